import Foundation

/// Softmax and log-softmax over the middle axis of `[outer, n, inner]`.
public protocol SoftmaxKernels {
    func softmax(x: UnsafePointer<Float>, outer: Int, n: Int, inner: Int, out: UnsafeMutablePointer<Float>, log: Bool)
    /// softmax: `gx = y (gy − Σ gy·y)`; log-softmax: `gx = gy − exp(y) Σ gy`.
    func softmaxBackward(y: UnsafePointer<Float>, gradOut: UnsafePointer<Float>, outer: Int, n: Int, inner: Int,
                         gradIn: UnsafeMutablePointer<Float>, log: Bool)
}

extension CPUBackend: SoftmaxKernels {
    public func softmax(x: UnsafePointer<Float>, outer: Int, n: Int, inner: Int, out: UnsafeMutablePointer<Float>, log: Bool) {
        parallelRows(outer * inner, rowCost: n * 4) { s, e in
            for r in s..<e {
                if inner == 1 && !log {
                    softmaxRow(x + r * n, out + r * n, n)
                    continue
                }
                let o = r / inner, i = r % inner
                let base = o * n * inner + i
                var m = -Float.infinity
                for j in 0..<n { m = Swift.max(m, x[base + j * inner]) }
                if m == -.infinity { m = 0 }
                var sum: Float = 0
                for j in 0..<n { let v = fastExp(x[base + j * inner] - m); out[base + j * inner] = v; sum += v }
                if log {
                    let ls = logf(sum) + m
                    for j in 0..<n { out[base + j * inner] = x[base + j * inner] - ls }
                } else {
                    let inv = 1 / sum
                    for j in 0..<n { out[base + j * inner] *= inv }
                }
            }
        }
    }

    public func softmaxBackward(y: UnsafePointer<Float>, gradOut g: UnsafePointer<Float>, outer: Int, n: Int, inner: Int,
                                gradIn: UnsafeMutablePointer<Float>, log: Bool) {
        parallelRows(outer * inner, rowCost: n * 3) { s, e in
            for r in s..<e {
                let o = r / inner, i = r % inner
                let base = o * n * inner + i
                if log {
                    var sum: Float = 0
                    for j in 0..<n { sum += g[base + j * inner] }
                    for j in 0..<n { let k = base + j * inner; gradIn[k] = g[k] - fastExp(y[k]) * sum }
                } else if inner == 1 {
                    softmaxBackwardRow(y + base, g + base, gradIn + base, n)
                } else {
                    var dot: Float = 0
                    for j in 0..<n { let k = base + j * inner; dot += g[k] * y[k] }
                    for j in 0..<n { let k = base + j * inner; gradIn[k] = y[k] * (g[k] - dot) }
                }
            }
        }
    }
}

/// Softmax backward of one contiguous row, `gradIn = y (g − Σ g·y)` (the dot in vector lanes, then across);
/// `gradIn` may alias `g`.
@inline(__always)
func softmaxBackwardRow(_ y: UnsafePointer<Float>, _ g: UnsafePointer<Float>, _ gradIn: UnsafeMutablePointer<Float>, _ n: Int) {
    let width = FloatVector.scalarCount, rawY = UnsafeRawPointer(y), rawG = UnsafeRawPointer(g)
    var acc = FloatVector(), j = 0
    while j + width <= n {
        acc = muladd(rawG.loadUnaligned(fromByteOffset: j * 4, as: FloatVector.self),
                     rawY.loadUnaligned(fromByteOffset: j * 4, as: FloatVector.self), acc)
        j += width
    }
    var dot = acc.sum()
    while j < n { dot = muladd(g[j], y[j], dot); j += 1 }
    for j in 0..<n { gradIn[j] = y[j] * (g[j] - dot) }
}

/// Softmax of one contiguous row with whole-vector SIMD (max, exp-and-sum, scale).
@inline(__always)
func softmaxRow(_ x: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, _ n: Int) {
    let rawX = UnsafeRawPointer(x), rawOut = UnsafeMutableRawPointer(out)
    var m = -Float.infinity
    var vm = FloatVector(repeating: -.infinity)
    var i = 0
    while i + FloatVector.scalarCount <= n {
        let v = rawX.loadUnaligned(fromByteOffset: i * 4, as: FloatVector.self)
        vm = vm.replacing(with: v, where: v .> vm)
        i += FloatVector.scalarCount
    }
    m = vm.max()
    while i < n { m = Swift.max(m, x[i]); i += 1 }
    if m == -.infinity { m = 0 }
    let vmax = FloatVector(repeating: m)
    var vsum = FloatVector(repeating: 0)
    i = 0
    while i + FloatVector.scalarCount <= n {
        let v = fastExp(rawX.loadUnaligned(fromByteOffset: i * 4, as: FloatVector.self) - vmax)
        rawOut.storeBytes(of: v, toByteOffset: i * 4, as: FloatVector.self)
        vsum += v
        i += FloatVector.scalarCount
    }
    var sum = vsum.sum()
    while i < n { let v = fastExp(x[i] - m); out[i] = v; sum += v; i += 1 }
    let inv = 1 / sum
    for j in 0..<n { out[j] *= inv }
}
