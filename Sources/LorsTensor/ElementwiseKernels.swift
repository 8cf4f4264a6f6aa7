import Foundation

/// Binary elementwise operations.
public enum BinaryOp: Sendable { case add, sub, mul, div, maximum, minimum }

/// Unary elementwise operations (activations included).
public enum UnaryOp: Sendable { case neg, exp, log, sqrt, abs, relu, gelu, sigmoid, tanh, square, reciprocal }

/// Operations of a tensor with a scalar `s`.
public enum ScalarOp: Sendable {
    case add, mul, pow, maximum, minimum
    /// `s - x`
    case reverseSub
    /// `s / x`
    case reverseDiv
}

/// Elementwise kernels. Shapes are the output's; input strides are broadcast strides (0 along
/// broadcast dimensions), so broadcasting never materialises the expanded operand.
public protocol ElementwiseKernels {
    func binary(_ op: BinaryOp, a: UnsafePointer<Float>, aStrides: [Int], b: UnsafePointer<Float>, bStrides: [Int],
                out: UnsafeMutablePointer<Float>, shape: [Int])
    func unary(_ op: UnaryOp, x: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>, count: Int)
    /// `gradIn = gradOut * f'(x)`, where `y = f(x)` is also supplied (cheaper for exp/sigmoid/tanh/sqrt).
    func unaryBackward(_ op: UnaryOp, x: UnsafePointer<Float>, y: UnsafePointer<Float>, gradOut: UnsafePointer<Float>,
                       gradIn: UnsafeMutablePointer<Float>, count: Int)
    func scalar(_ op: ScalarOp, x: UnsafePointer<Float>, s: Float, out: UnsafeMutablePointer<Float>, count: Int)
    /// `y += alpha * x`.
    func axpy(alpha: Float, x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>, count: Int)
    /// Gradient of `x^p` with respect to `x`: `gradIn = gradOut * p * x^(p-1)`.
    func powBackward(x: UnsafePointer<Float>, p: Float, gradOut: UnsafePointer<Float>, gradIn: UnsafeMutablePointer<Float>, count: Int)
}

@inline(__always) func applyBinary(_ op: BinaryOp, _ a: Float, _ b: Float) -> Float {
    switch op {
    case .add: return a + b
    case .sub: return a - b
    case .mul: return a * b
    case .div: return a / b
    case .maximum: return Swift.max(a, b)
    case .minimum: return Swift.min(a, b)
    }
}

/// tanh-free exact GELU: 0.5 x (1 + erf(x / sqrt 2)) (PyTorch's default).
@inline(__always) func geluForward(_ x: Float) -> Float { 0.5 * x * (1 + fastErf(x * 0.70710678118654752)) }
@inline(__always) func geluForward(_ x: FloatVector) -> FloatVector { 0.5 * x * (1 + fastErf(x * 0.70710678118654752)) }

/// GELU'(x) = Φ(x) + x φ(x). erf(x/√2) (A&S 7.1.26) needs exp(−x²/2), which is also φ's exponential: one exp.
/// The vector overload performs the same operations lane by lane (same bits as the scalar tail).
@inline(__always) func geluDerivative(_ x: Float) -> Float {
    let e = fastExp(-0.5 * x * x)
    let erf = withSignOf(x, erfMagnitude(Swift.abs(x) * 0.70710678118654752, e))
    return muladd(x, e * 0.3989422804014327, 0.5 * (1 + erf))
}

@inline(__always) func geluDerivative(_ x: FloatVector) -> FloatVector {
    let e = fastExp(-0.5 * x * x)
    let erf = withSignOf(x, erfMagnitude(magnitude(x) * 0.70710678118654752, e))
    return muladd(x, e * 0.3989422804014327, 0.5 * (1 + erf))
}

extension CPUBackend: ElementwiseKernels {
    public func binary(_ op: BinaryOp, a: UnsafePointer<Float>, aStrides: [Int], b: UnsafePointer<Float>, bStrides: [Int],
                       out: UnsafeMutablePointer<Float>, shape: [Int]) {
        let count = shape.reduce(1, *)
        if count == 0 { return }
        let contiguous = Tensor.contiguousStrides(shape)
        let aFull = aStrides == contiguous, bFull = bStrides == contiguous
        // Fast paths: same shape; one side constant; one side repeating over trailing dims.
        if aFull && bFull {
            parallelFor(count) { s, e in binaryLoop(op, a + s, 1, b + s, 1, out + s, e - s) }
            return
        }
        if aFull && bStrides.allSatisfy({ $0 == 0 }) {
            parallelFor(count) { s, e in binaryLoop(op, a + s, 1, b, 0, out + s, e - s) }
            return
        }
        if bFull && aStrides.allSatisfy({ $0 == 0 }) {
            parallelFor(count) { s, e in binaryLoop(op, a, 0, b + s, 1, out + s, e - s) }
            return
        }
        // General: innermost dimension as a strided loop, outer dims by index arithmetic.
        let rank = shape.count
        let inner = shape[rank - 1]
        let aInner = aStrides[rank - 1], bInner = bStrides[rank - 1]
        forEachStridedRow(shape: shape, stridesA: aStrides, stridesB: bStrides) { r, ao, bo in
            binaryLoop(op, a + ao, aInner, b + bo, bInner, out + r * inner, inner)
        }
    }

    public func unary(_ op: UnaryOp, x: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>, count: Int) {
        parallelFor(count, grain: 16_384) { s, e in
            switch op {
            case .neg: for i in s..<e { out[i] = -x[i] }
            case .exp: mapVector(x, out, s, e, { fastExp($0) }, { fastExp($0) })
            case .log: for i in s..<e { out[i] = logf(x[i]) }
            case .sqrt: for i in s..<e { out[i] = x[i].squareRoot() }
            case .abs: for i in s..<e { out[i] = Swift.abs(x[i]) }
            case .relu: for i in s..<e { out[i] = x[i] > 0 ? x[i] : 0 }
            case .gelu: geluForwardLoop(x, out, s, e)
            case .sigmoid: mapVector(x, out, s, e, { 1 / (1 + fastExp(-$0)) }, { 1 / (1 + fastExp(-$0)) })
            case .tanh: for i in s..<e { out[i] = tanhf(x[i]) }
            case .square: for i in s..<e { out[i] = x[i] * x[i] }
            case .reciprocal: for i in s..<e { out[i] = 1 / x[i] }
            }
        }
    }

    public func unaryBackward(_ op: UnaryOp, x: UnsafePointer<Float>, y: UnsafePointer<Float>, gradOut g: UnsafePointer<Float>,
                              gradIn: UnsafeMutablePointer<Float>, count: Int) {
        parallelFor(count, grain: 16_384) { s, e in
            switch op {
            case .neg: for i in s..<e { gradIn[i] = -g[i] }
            case .exp: for i in s..<e { gradIn[i] = g[i] * y[i] }
            case .log: for i in s..<e { gradIn[i] = g[i] / x[i] }
            case .sqrt: for i in s..<e { gradIn[i] = g[i] * 0.5 / y[i] }
            case .abs: for i in s..<e { gradIn[i] = x[i] > 0 ? g[i] : (x[i] < 0 ? -g[i] : 0) }
            case .relu: for i in s..<e { gradIn[i] = x[i] > 0 ? g[i] : 0 }
            case .gelu: geluBackwardLoop(x, g, gradIn, s, e)
            case .sigmoid: for i in s..<e { gradIn[i] = g[i] * y[i] * (1 - y[i]) }
            case .tanh: for i in s..<e { gradIn[i] = g[i] * (1 - y[i] * y[i]) }
            case .square: for i in s..<e { gradIn[i] = g[i] * 2 * x[i] }
            case .reciprocal: for i in s..<e { gradIn[i] = -g[i] * y[i] * y[i] }
            }
        }
    }

    public func scalar(_ op: ScalarOp, x: UnsafePointer<Float>, s sv: Float, out: UnsafeMutablePointer<Float>, count: Int) {
        parallelFor(count) { s, e in
            switch op {
            case .add: for i in s..<e { out[i] = x[i] + sv }
            case .mul: for i in s..<e { out[i] = x[i] * sv }
            case .pow:
                if sv == 2 { for i in s..<e { out[i] = x[i] * x[i] } } else { for i in s..<e { out[i] = powf(x[i], sv) } }
            case .maximum: for i in s..<e { out[i] = Swift.max(x[i], sv) }
            case .minimum: for i in s..<e { out[i] = Swift.min(x[i], sv) }
            case .reverseSub: for i in s..<e { out[i] = sv - x[i] }
            case .reverseDiv: for i in s..<e { out[i] = sv / x[i] }
            }
        }
    }

    public func axpy(alpha: Float, x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>, count: Int) {
        parallelFor(count) { s, e in
            if alpha == 1 { for i in s..<e { y[i] += x[i] } } else { for i in s..<e { y[i] += alpha * x[i] } }
        }
    }

    public func powBackward(x: UnsafePointer<Float>, p: Float, gradOut: UnsafePointer<Float>, gradIn: UnsafeMutablePointer<Float>, count: Int) {
        parallelFor(count) { s, e in
            for i in s..<e { gradIn[i] = gradOut[i] * p * powf(x[i], p - 1) }
        }
    }
}

@inline(__always)
private func binaryLoop(_ op: BinaryOp, _ a: UnsafePointer<Float>, _ sa: Int, _ b: UnsafePointer<Float>, _ sb: Int,
                        _ out: UnsafeMutablePointer<Float>, _ n: Int) {
    // Specialised loops for the common unit/zero strides so the compiler vectorises them.
    switch (op, sa, sb) {
    case (.add, 1, 1): for i in 0..<n { out[i] = a[i] + b[i] }
    case (.add, 1, 0): let v = b[0]; for i in 0..<n { out[i] = a[i] + v }
    case (.sub, 1, 1): for i in 0..<n { out[i] = a[i] - b[i] }
    case (.mul, 1, 1): for i in 0..<n { out[i] = a[i] * b[i] }
    case (.mul, 1, 0): let v = b[0]; for i in 0..<n { out[i] = a[i] * v }
    case (.mul, 0, 1): let v = a[0]; for i in 0..<n { out[i] = v * b[i] }
    case (.div, 1, 1): for i in 0..<n { out[i] = a[i] / b[i] }
    default: for i in 0..<n { out[i] = applyBinary(op, a[i * sa], b[i * sb]) }
    }
}

/// GELU over `x[s..<e]` as one straight SIMD loop (no closures, so the exp/erf math inlines).
func geluForwardLoop(_ x: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, _ s: Int, _ e: Int) {
    var i = s
    let rawIn = UnsafeRawPointer(x), rawOut = UnsafeMutableRawPointer(out)
    while i + FloatVector.scalarCount <= e {
        let v = rawIn.loadUnaligned(fromByteOffset: i * 4, as: FloatVector.self)
        rawOut.storeBytes(of: geluForward(v), toByteOffset: i * 4, as: FloatVector.self)
        i += FloatVector.scalarCount
    }
    while i < e { out[i] = geluForward(x[i]); i += 1 }
}

/// `gradIn = gradOut · GELU'(x)` over `[s, e)` as one straight SIMD loop.
func geluBackwardLoop(_ x: UnsafePointer<Float>, _ g: UnsafePointer<Float>, _ gradIn: UnsafeMutablePointer<Float>,
                              _ s: Int, _ e: Int) {
    var i = s
    let rawX = UnsafeRawPointer(x), rawG = UnsafeRawPointer(g), rawOut = UnsafeMutableRawPointer(gradIn)
    while i + FloatVector.scalarCount <= e {
        let v = rawX.loadUnaligned(fromByteOffset: i * 4, as: FloatVector.self)
        let w = rawG.loadUnaligned(fromByteOffset: i * 4, as: FloatVector.self)
        rawOut.storeBytes(of: w * geluDerivative(v), toByteOffset: i * 4, as: FloatVector.self)
        i += FloatVector.scalarCount
    }
    while i < e { gradIn[i] = g[i] * geluDerivative(x[i]); i += 1 }
}
