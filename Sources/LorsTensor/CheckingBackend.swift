import Foundation

/// A backend whose device memory is not host-addressable, for proving that code above the seam reaches tensor
/// memory only through the backend.
///
/// Memory is ordinary host memory, but the pointers handed to `Storage` are poisoned: the real address with bits 62
/// and 55 set (`poisonBits`), a non-canonical address on x86-64 and a kernel-half one on AArch64 (whose top byte is
/// ignored), so any dereference outside this class faults (SIGSEGV).
/// Every `BackendCore` method and kernel translates its device pointers back (and checks that they carry the
/// poison, so memory of another backend is rejected with a message instead of being used), then forwards to
/// `CPUBackend.shared`'s kernels: results are bitwise those of the CPU backend. `isHostAddressable` is false, so
/// the host calls of `Tensor` stage through host copies (download, body, upload) as they would on a GPU. Host
/// arguments (`upload`'s source, `download`'s destination, `Int32` index arrays) must not be poisoned.
///
/// Install it with `Backends.setCurrent(CheckingBackend.shared)` before creating any tensor the run uses; tensors
/// created earlier stay on their backend, and an op mixing them with checking-backend tensors stops with a
/// precondition failure naming the pointer.
public final class CheckingBackend: BackendCore, @unchecked Sendable {
    /// The single checking backend instance.
    public static let shared = CheckingBackend()

    /// Bits set in every device pointer this backend hands out.
    public static let poisonBits: UInt = 1 << 62 | 1 << 55

    public let name = "checking"
    /// Device pointers are poisoned: the host must never dereference them.
    public var isHostAddressable: Bool { false }

    private let cpu = CPUBackend.shared
    private let lock = NSLock()
    private var stats = MemoryStatistics(inUseBytes: 0, cachedBytes: 0, peakInUseBytes: 0, freshAllocations: 0)

    private init() {}

    /// Whether `pointer` is memory of this backend (carries the poison bit).
    public static func isDevicePointer(_ pointer: UnsafeRawPointer) -> Bool {
        UInt(bitPattern: pointer) & poisonBits == poisonBits
    }

    // MARK: pointer translation

    @inline(__always) private static func unpoisoned(_ bits: UInt) -> UInt {
        precondition(bits & poisonBits == poisonBits,
                     "CheckingBackend: 0x\(String(bits, radix: 16)) is not memory of this backend (a tensor of another backend?)")
        return bits & ~poisonBits
    }
    @inline(__always) private func real(_ p: UnsafeMutablePointer<Float>) -> UnsafeMutablePointer<Float> {
        UnsafeMutablePointer(bitPattern: Self.unpoisoned(UInt(bitPattern: p)))!
    }
    @inline(__always) private func real(_ p: UnsafePointer<Float>) -> UnsafePointer<Float> {
        UnsafePointer(bitPattern: Self.unpoisoned(UInt(bitPattern: p)))!
    }
    @inline(__always) private func real(_ p: UnsafeMutablePointer<Float>?) -> UnsafeMutablePointer<Float>? { p.map { real($0) } }
    @inline(__always) private func real(_ p: UnsafePointer<Float>?) -> UnsafePointer<Float>? { p.map { real($0) } }
    @inline(__always) private func host<T>(_ p: UnsafePointer<T>) -> UnsafePointer<T> {
        precondition(UInt(bitPattern: p) & Self.poisonBits != Self.poisonBits, "CheckingBackend: device pointer \(p) passed as host memory")
        return p
    }
    @inline(__always) private func host<T>(_ p: UnsafePointer<T>?) -> UnsafePointer<T>? { p.map { host($0) } }
    @inline(__always) private func host<T>(_ p: UnsafeMutablePointer<T>) -> UnsafeMutablePointer<T> {
        UnsafeMutablePointer(mutating: host(UnsafePointer(p)))
    }

    // MARK: BackendCore

    public func allocate(_ count: Int) -> UnsafeMutablePointer<Float> {
        let raw = UnsafeMutableRawPointer.allocate(byteCount: count * 4, alignment: 64)
        lock.lock()
        stats.inUseBytes += count * 4
        stats.peakInUseBytes = Swift.max(stats.peakInUseBytes, stats.inUseBytes)
        stats.freshAllocations += 1
        lock.unlock()
        precondition(UInt(bitPattern: raw) & Self.poisonBits == 0, "CheckingBackend: host address \(raw) overlaps the poison bits")
        return UnsafeMutablePointer(bitPattern: UInt(bitPattern: raw) | Self.poisonBits)!
    }

    public func release(_ pointer: UnsafeMutablePointer<Float>, count: Int) {
        UnsafeMutableRawPointer(real(pointer)).deallocate()
        lock.lock()
        stats.inUseBytes -= count * 4
        lock.unlock()
    }

    public var memoryStatistics: MemoryStatistics {
        lock.lock(); defer { lock.unlock() }
        return stats
    }

    public func emptyCache() {}

    public func fill(_ pointer: UnsafeMutablePointer<Float>, count: Int, value: Float) {
        cpu.fill(real(pointer), count: count, value: value)
    }
    public func copy(from source: UnsafePointer<Float>, to destination: UnsafeMutablePointer<Float>, count: Int) {
        cpu.copy(from: real(source), to: real(destination), count: count)
    }
    public func upload(_ hostSource: UnsafePointer<Float>, to destination: UnsafeMutablePointer<Float>, count: Int) {
        cpu.copy(from: host(hostSource), to: real(destination), count: count)
    }
    public func download(_ source: UnsafePointer<Float>, to hostDestination: UnsafeMutablePointer<Float>, count: Int) {
        cpu.copy(from: real(source), to: host(hostDestination), count: count)
    }
}

extension CheckingBackend: GemmKernels {
    public func gemm(transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int, alpha: Float,
                     a: UnsafePointer<Float>, lda: Int, strideA: Int, b: UnsafePointer<Float>, ldb: Int, strideB: Int,
                     beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int, strideC: Int, batch: Int) {
        cpu.gemm(transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, alpha: alpha, a: real(a), lda: lda,
                 strideA: strideA, b: real(b), ldb: ldb, strideB: strideB, beta: beta, c: real(c), ldc: ldc,
                 strideC: strideC, batch: batch)
    }
    public func gemmGrid(transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int, alpha: Float,
                         a: UnsafePointer<Float>, lda: Int, outerA: Int, innerA: Int,
                         b: UnsafePointer<Float>, ldb: Int, outerB: Int, innerB: Int,
                         beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int, outerC: Int, innerC: Int,
                         outer: Int, inner: Int) {
        cpu.gemmGrid(transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, alpha: alpha,
                     a: real(a), lda: lda, outerA: outerA, innerA: innerA, b: real(b), ldb: ldb, outerB: outerB, innerB: innerB,
                     beta: beta, c: real(c), ldc: ldc, outerC: outerC, innerC: innerC, outer: outer, inner: inner)
    }
}

extension CheckingBackend: ElementwiseKernels {
    public func binary(_ op: BinaryOp, a: UnsafePointer<Float>, aStrides: [Int], b: UnsafePointer<Float>, bStrides: [Int],
                       out: UnsafeMutablePointer<Float>, shape: [Int]) {
        cpu.binary(op, a: real(a), aStrides: aStrides, b: real(b), bStrides: bStrides, out: real(out), shape: shape)
    }
    public func unary(_ op: UnaryOp, x: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>, count: Int) {
        cpu.unary(op, x: real(x), out: real(out), count: count)
    }
    public func unaryBackward(_ op: UnaryOp, x: UnsafePointer<Float>, y: UnsafePointer<Float>, gradOut: UnsafePointer<Float>,
                              gradIn: UnsafeMutablePointer<Float>, count: Int) {
        cpu.unaryBackward(op, x: real(x), y: real(y), gradOut: real(gradOut), gradIn: real(gradIn), count: count)
    }
    public func scalar(_ op: ScalarOp, x: UnsafePointer<Float>, s: Float, out: UnsafeMutablePointer<Float>, count: Int) {
        cpu.scalar(op, x: real(x), s: s, out: real(out), count: count)
    }
    public func axpy(alpha: Float, x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>, count: Int) {
        cpu.axpy(alpha: alpha, x: real(x), y: real(y), count: count)
    }
    public func powBackward(x: UnsafePointer<Float>, p: Float, gradOut: UnsafePointer<Float>, gradIn: UnsafeMutablePointer<Float>, count: Int) {
        cpu.powBackward(x: real(x), p: p, gradOut: real(gradOut), gradIn: real(gradIn), count: count)
    }
}

extension CheckingBackend: ReductionKernels {
    public func reduceSum(x: UnsafePointer<Float>, outer: Int, n: Int, inner: Int, out: UnsafeMutablePointer<Float>, accumulate: Bool) {
        cpu.reduceSum(x: real(x), outer: outer, n: n, inner: inner, out: real(out), accumulate: accumulate)
    }
    public func reduceMax(x: UnsafePointer<Float>, outer: Int, n: Int, inner: Int, out: UnsafeMutablePointer<Float>) {
        cpu.reduceMax(x: real(x), outer: outer, n: n, inner: inner, out: real(out))
    }
    public func reduceMaxBackward(x: UnsafePointer<Float>, y: UnsafePointer<Float>, gradOut: UnsafePointer<Float>,
                                  outer: Int, n: Int, inner: Int, gradIn: UnsafeMutablePointer<Float>) {
        cpu.reduceMaxBackward(x: real(x), y: real(y), gradOut: real(gradOut), outer: outer, n: n, inner: inner, gradIn: real(gradIn))
    }
    public func sumOfSquares(x: UnsafePointer<Float>, count: Int) -> Double {
        cpu.sumOfSquares(x: real(x), count: count)
    }
    public func allFinite(x: UnsafePointer<Float>, count: Int) -> Bool {
        cpu.allFinite(x: real(x), count: count)
    }
}

extension CheckingBackend: LayoutKernels {
    public func stridedCopy(src: UnsafePointer<Float>, srcStrides: [Int], dst: UnsafeMutablePointer<Float>, dstStrides: [Int],
                            shape: [Int], accumulate: Bool) {
        cpu.stridedCopy(src: real(src), srcStrides: srcStrides, dst: real(dst), dstStrides: dstStrides, shape: shape, accumulate: accumulate)
    }
    public func gather(x: UnsafePointer<Float>, outer: Int, n: Int, inner: Int, indices: UnsafePointer<Int32>, indexCount: Int,
                       out: UnsafeMutablePointer<Float>) {
        cpu.gather(x: real(x), outer: outer, n: n, inner: inner, indices: host(indices), indexCount: indexCount, out: real(out))
    }
    public func scatterAdd(src: UnsafePointer<Float>, outer: Int, indexCount: Int, inner: Int, indices: UnsafePointer<Int32>,
                           out: UnsafeMutablePointer<Float>, n: Int) {
        cpu.scatterAdd(src: real(src), outer: outer, indexCount: indexCount, inner: inner, indices: host(indices), out: real(out), n: n)
    }
}

extension CheckingBackend: SoftmaxKernels {
    public func softmax(x: UnsafePointer<Float>, outer: Int, n: Int, inner: Int, out: UnsafeMutablePointer<Float>, log: Bool) {
        cpu.softmax(x: real(x), outer: outer, n: n, inner: inner, out: real(out), log: log)
    }
    public func softmaxBackward(y: UnsafePointer<Float>, gradOut: UnsafePointer<Float>, outer: Int, n: Int, inner: Int,
                                gradIn: UnsafeMutablePointer<Float>, log: Bool) {
        cpu.softmaxBackward(y: real(y), gradOut: real(gradOut), outer: outer, n: n, inner: inner, gradIn: real(gradIn), log: log)
    }
}

extension CheckingBackend: AttentionKernels {
    public func attentionForward(qkv: UnsafePointer<Float>, batch: Int, tokens: Int, queries: Int, dim: Int, heads: Int, scale: Float,
                                 probs: UnsafeMutablePointer<Float>, out: UnsafeMutablePointer<Float>) {
        cpu.attentionForward(qkv: real(qkv), batch: batch, tokens: tokens, queries: queries, dim: dim, heads: heads, scale: scale,
                             probs: real(probs), out: real(out))
    }
    public func attentionBackward(qkv: UnsafePointer<Float>, probs: UnsafePointer<Float>, gradOut: UnsafePointer<Float>,
                                  batch: Int, tokens: Int, queries: Int, dim: Int, heads: Int, scale: Float,
                                  gradQKV: UnsafeMutablePointer<Float>) {
        cpu.attentionBackward(qkv: real(qkv), probs: real(probs), gradOut: real(gradOut), batch: batch, tokens: tokens,
                              queries: queries, dim: dim, heads: heads, scale: scale, gradQKV: real(gradQKV))
    }
}

extension CheckingBackend: LinearKernels {
    public func linearForward(x: UnsafePointer<Float>, rows: Int, inFeatures: Int, weight: UnsafePointer<Float>,
                              bias: UnsafePointer<Float>?, outFeatures: Int, out: UnsafeMutablePointer<Float>,
                              geluOut: UnsafeMutablePointer<Float>?) {
        cpu.linearForward(x: real(x), rows: rows, inFeatures: inFeatures, weight: real(weight), bias: real(bias),
                          outFeatures: outFeatures, out: real(out), geluOut: real(geluOut))
    }
    public func linearInputGradientThroughGELU(gradOut: UnsafePointer<Float>, rows: Int, outFeatures: Int,
                                               weight: UnsafePointer<Float>, inFeatures: Int,
                                               preActivation: UnsafePointer<Float>, gradIn: UnsafeMutablePointer<Float>) {
        cpu.linearInputGradientThroughGELU(gradOut: real(gradOut), rows: rows, outFeatures: outFeatures, weight: real(weight),
                                           inFeatures: inFeatures, preActivation: real(preActivation), gradIn: real(gradIn))
    }
}

extension CheckingBackend: NormKernels {
    public func layerNorm(x: UnsafePointer<Float>, weight: UnsafePointer<Float>?, bias: UnsafePointer<Float>?, rows: Int, n: Int,
                          eps: Float, out: UnsafeMutablePointer<Float>, mean: UnsafeMutablePointer<Float>, rstd: UnsafeMutablePointer<Float>) {
        cpu.layerNorm(x: real(x), weight: real(weight), bias: real(bias), rows: rows, n: n, eps: eps, out: real(out),
                      mean: real(mean), rstd: real(rstd))
    }
    public func layerNormBackward(x: UnsafePointer<Float>, weight: UnsafePointer<Float>?, mean: UnsafePointer<Float>,
                                  rstd: UnsafePointer<Float>, gradOut: UnsafePointer<Float>, rows: Int, n: Int,
                                  gradIn: UnsafeMutablePointer<Float>, gradWeight: UnsafeMutablePointer<Float>?,
                                  gradBias: UnsafeMutablePointer<Float>?) {
        cpu.layerNormBackward(x: real(x), weight: real(weight), mean: real(mean), rstd: real(rstd), gradOut: real(gradOut),
                              rows: rows, n: n, gradIn: real(gradIn), gradWeight: real(gradWeight), gradBias: real(gradBias))
    }
    public func groupNorm(x: UnsafePointer<Float>, weight: UnsafePointer<Float>?, bias: UnsafePointer<Float>?, batch: Int,
                          channels: Int, spatial: Int, groups: Int, eps: Float, out: UnsafeMutablePointer<Float>,
                          mean: UnsafeMutablePointer<Float>, rstd: UnsafeMutablePointer<Float>) {
        cpu.groupNorm(x: real(x), weight: real(weight), bias: real(bias), batch: batch, channels: channels, spatial: spatial,
                      groups: groups, eps: eps, out: real(out), mean: real(mean), rstd: real(rstd))
    }
    public func groupNormBackward(x: UnsafePointer<Float>, weight: UnsafePointer<Float>?, mean: UnsafePointer<Float>,
                                  rstd: UnsafePointer<Float>, gradOut: UnsafePointer<Float>, batch: Int, channels: Int,
                                  spatial: Int, groups: Int, gradIn: UnsafeMutablePointer<Float>,
                                  gradWeight: UnsafeMutablePointer<Float>?, gradBias: UnsafeMutablePointer<Float>?) {
        cpu.groupNormBackward(x: real(x), weight: real(weight), mean: real(mean), rstd: real(rstd), gradOut: real(gradOut),
                              batch: batch, channels: channels, spatial: spatial, groups: groups, gradIn: real(gradIn),
                              gradWeight: real(gradWeight), gradBias: real(gradBias))
    }
}

extension CheckingBackend: LossKernels {
    public func crossEntropy(logits: UnsafePointer<Float>, rows: Int, classes: Int, targets: UnsafePointer<Int32>?,
                             softTargets: UnsafePointer<Float>?, labelSmoothing: Float, loss: UnsafeMutablePointer<Float>,
                             logSumExp: UnsafeMutablePointer<Float>) {
        cpu.crossEntropy(logits: real(logits), rows: rows, classes: classes, targets: host(targets), softTargets: real(softTargets),
                         labelSmoothing: labelSmoothing, loss: real(loss), logSumExp: real(logSumExp))
    }
    public func crossEntropyBackward(logits: UnsafePointer<Float>, logSumExp: UnsafePointer<Float>, rows: Int, classes: Int,
                                     targets: UnsafePointer<Int32>?, softTargets: UnsafePointer<Float>?, labelSmoothing: Float,
                                     gradLoss: UnsafePointer<Float>, gradLogits: UnsafeMutablePointer<Float>) {
        cpu.crossEntropyBackward(logits: real(logits), logSumExp: real(logSumExp), rows: rows, classes: classes,
                                 targets: host(targets), softTargets: real(softTargets), labelSmoothing: labelSmoothing,
                                 gradLoss: real(gradLoss), gradLogits: real(gradLogits))
    }
    public func sigmoidFocalLoss(logits: UnsafePointer<Float>, targets: UnsafePointer<Float>, count: Int, alpha: Float, gamma: Float,
                                 loss: UnsafeMutablePointer<Float>) {
        cpu.sigmoidFocalLoss(logits: real(logits), targets: real(targets), count: count, alpha: alpha, gamma: gamma, loss: real(loss))
    }
    public func sigmoidFocalLossBackward(logits: UnsafePointer<Float>, targets: UnsafePointer<Float>, count: Int, alpha: Float,
                                         gamma: Float, gradLoss: UnsafePointer<Float>, gradLogits: UnsafeMutablePointer<Float>) {
        cpu.sigmoidFocalLossBackward(logits: real(logits), targets: real(targets), count: count, alpha: alpha, gamma: gamma,
                                     gradLoss: real(gradLoss), gradLogits: real(gradLogits))
    }
    public func l1Loss(prediction: UnsafePointer<Float>, target: UnsafePointer<Float>, count: Int, loss: UnsafeMutablePointer<Float>) {
        cpu.l1Loss(prediction: real(prediction), target: real(target), count: count, loss: real(loss))
    }
    public func l1LossBackward(prediction: UnsafePointer<Float>, target: UnsafePointer<Float>, count: Int, gradLoss: UnsafePointer<Float>,
                               gradPrediction: UnsafeMutablePointer<Float>?, gradTarget: UnsafeMutablePointer<Float>?) {
        cpu.l1LossBackward(prediction: real(prediction), target: real(target), count: count, gradLoss: real(gradLoss),
                           gradPrediction: real(gradPrediction), gradTarget: real(gradTarget))
    }
    public func giouLoss(predicted: UnsafePointer<Float>, target: UnsafePointer<Float>, count: Int, eps: Float,
                         loss: UnsafeMutablePointer<Float>) {
        cpu.giouLoss(predicted: real(predicted), target: real(target), count: count, eps: eps, loss: real(loss))
    }
    public func giouLossBackward(predicted: UnsafePointer<Float>, target: UnsafePointer<Float>, count: Int, eps: Float,
                                 gradLoss: UnsafePointer<Float>, gradPredicted: UnsafeMutablePointer<Float>?,
                                 gradTarget: UnsafeMutablePointer<Float>?) {
        cpu.giouLossBackward(predicted: real(predicted), target: real(target), count: count, eps: eps, gradLoss: real(gradLoss),
                             gradPredicted: real(gradPredicted), gradTarget: real(gradTarget))
    }
}

extension CheckingBackend: ConvKernels {
    public func im2col(input: UnsafePointer<Float>, images: Int, channels: Int, geometry: WindowGeometry,
                       col: UnsafeMutablePointer<Float>) {
        cpu.im2col(input: real(input), images: images, channels: channels, geometry: geometry, col: real(col))
    }
    public func col2im(col: UnsafePointer<Float>, images: Int, channels: Int, geometry: WindowGeometry,
                       image: UnsafeMutablePointer<Float>, accumulate: Bool) {
        cpu.col2im(col: real(col), images: images, channels: channels, geometry: geometry, image: real(image), accumulate: accumulate)
    }
    public func maxPool2d(input: UnsafePointer<Float>, planes: Int, geometry: WindowGeometry,
                          out: UnsafeMutablePointer<Float>, indices: UnsafeMutablePointer<Float>) {
        cpu.maxPool2d(input: real(input), planes: planes, geometry: geometry, out: real(out), indices: real(indices))
    }
    public func maxPool2dBackward(gradOut: UnsafePointer<Float>, indices: UnsafePointer<Float>, planes: Int,
                                  geometry: WindowGeometry, gradIn: UnsafeMutablePointer<Float>) {
        cpu.maxPool2dBackward(gradOut: real(gradOut), indices: real(indices), planes: planes, geometry: geometry, gradIn: real(gradIn))
    }
}

extension CheckingBackend: SamplingKernels {
    public func gridSample(input: UnsafePointer<Float>, grid: UnsafePointer<Float>, batch: Int, channels: Int,
                           inH: Int, inW: Int, outH: Int, outW: Int, out: UnsafeMutablePointer<Float>) {
        cpu.gridSample(input: real(input), grid: real(grid), batch: batch, channels: channels, inH: inH, inW: inW,
                       outH: outH, outW: outW, out: real(out))
    }
    public func gridSampleBackward(input: UnsafePointer<Float>, grid: UnsafePointer<Float>, gradOut: UnsafePointer<Float>,
                                   batch: Int, channels: Int, inH: Int, inW: Int, outH: Int, outW: Int,
                                   gradInput: UnsafeMutablePointer<Float>?, gradGrid: UnsafeMutablePointer<Float>?) {
        cpu.gridSampleBackward(input: real(input), grid: real(grid), gradOut: real(gradOut), batch: batch, channels: channels,
                               inH: inH, inW: inW, outH: outH, outW: outW, gradInput: real(gradInput), gradGrid: real(gradGrid))
    }
}

extension CheckingBackend: RandomKernels {
    public func fillUniformRows(_ out: UnsafeMutablePointer<Float>, rows: Int, rowLength: Int, key: RandomKey, firstRow: Int) {
        cpu.fillUniformRows(real(out), rows: rows, rowLength: rowLength, key: key, firstRow: firstRow)
    }
    public func dropoutMask(_ out: UnsafeMutablePointer<Float>, rows: Int, rowLength: Int, key: RandomKey, firstRow: Int, p: Float) {
        cpu.dropoutMask(real(out), rows: rows, rowLength: rowLength, key: key, firstRow: firstRow, p: p)
    }
}

extension CheckingBackend: OptimizerKernels {
    public func adamwStep(parameter: UnsafeMutablePointer<Float>, gradient: UnsafePointer<Float>,
                          expAvg: UnsafeMutablePointer<Float>, expAvgSq: UnsafeMutablePointer<Float>, count: Int,
                          learningRate: Double, beta1: Double, beta2: Double, epsilon: Double, weightDecay: Double, step: Int) {
        cpu.adamwStep(parameter: real(parameter), gradient: real(gradient), expAvg: real(expAvg), expAvgSq: real(expAvgSq),
                      count: count, learningRate: learningRate, beta1: beta1, beta2: beta2, epsilon: epsilon,
                      weightDecay: weightDecay, step: step)
    }
    public func sgdStep(parameter: UnsafeMutablePointer<Float>, gradient: UnsafePointer<Float>,
                        momentumBuffer: UnsafeMutablePointer<Float>?, count: Int,
                        learningRate: Double, momentum: Double, weightDecay: Double, nesterov: Bool, initializeBuffer: Bool) {
        cpu.sgdStep(parameter: real(parameter), gradient: real(gradient), momentumBuffer: real(momentumBuffer), count: count,
                    learningRate: learningRate, momentum: momentum, weightDecay: weightDecay, nesterov: nesterov,
                    initializeBuffer: initializeBuffer)
    }
}
