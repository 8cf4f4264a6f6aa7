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
                } else {
                    var dot: Float = 0
                    for j in 0..<n { let k = base + j * inner; dot += g[k] * y[k] }
                    for j in 0..<n { let k = base + j * inner; gradIn[k] = y[k] * (g[k] - dot) }
                }
            }
        }
    }
}
