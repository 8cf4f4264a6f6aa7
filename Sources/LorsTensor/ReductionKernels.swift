/// Reductions over the middle axis of a `[outer, n, inner]` view.
///
/// Every output element is summed by one thread in a fixed order, so results do not depend on
/// the thread count; whole-tensor sums use fixed-size blocks combined in order.
public protocol ReductionKernels {
    /// `out[o, i] = sum_j x[o, j, i]` (or `+=` when `accumulate`).
    func reduceSum(x: UnsafePointer<Float>, outer: Int, n: Int, inner: Int, out: UnsafeMutablePointer<Float>, accumulate: Bool)
    /// `out[o, i] = max_j x[o, j, i]`.
    func reduceMax(x: UnsafePointer<Float>, outer: Int, n: Int, inner: Int, out: UnsafeMutablePointer<Float>)
    /// Routes `gradOut[o, i]` to the first `j` where `x[o, j, i] == y[o, i]`; zero elsewhere.
    func reduceMaxBackward(x: UnsafePointer<Float>, y: UnsafePointer<Float>, gradOut: UnsafePointer<Float>,
                           outer: Int, n: Int, inner: Int, gradIn: UnsafeMutablePointer<Float>)
    /// Sum of squares of `count` floats, accumulated in Double (gradient norms).
    func sumOfSquares(x: UnsafePointer<Float>, count: Int) -> Double
    /// Whether all `count` floats are finite (no NaN, no ±Inf); one pass over the memory.
    func allFinite(x: UnsafePointer<Float>, count: Int) -> Bool
}

extension CPUBackend: ReductionKernels {
    public func reduceSum(x: UnsafePointer<Float>, outer: Int, n: Int, inner: Int, out: UnsafeMutablePointer<Float>, accumulate: Bool) {
        if inner == 1 && outer == 1 {
            // Whole-vector sum: fixed blocks, combined in order (deterministic for any thread count).
            let total = Float(fixedBlockSum(count: n) { lo, hi in
                var acc: Float = 0
                for j in lo..<hi { acc += x[j] }
                return Double(acc)
            })
            out[0] = accumulate ? out[0] + total : total
            return
        }
        if inner == 1 {
            parallelRows(outer, rowCost: n) { s, e in
                for o in s..<e {
                    let row = x + o * n
                    var acc: Float = 0
                    for j in 0..<n { acc += row[j] }
                    out[o] = accumulate ? out[o] + acc : acc
                }
            }
            return
        }
        if outer < Threading.threads && inner >= 128 {
            // Few outer rows (a bias gradient: outer 1, n = tokens, inner = features): split the columns instead,
            // so every core sums its own columns over all rows (each column in the same order as before).
            parallelFor(inner, grain: Swift.max(64, 32_768 / Swift.max(1, outer * n)) / 16 * 16) { s, e in
                for o in 0..<outer {
                    let dst = out + o * inner
                    if !accumulate { (dst + s).update(repeating: 0, count: e - s) }
                    for j in 0..<n {
                        let src = x + (o * n + j) * inner
                        for i in s..<e { dst[i] += src[i] }
                    }
                }
            }
            return
        }
        parallelRows(outer, rowCost: n * inner) { s, e in
            for o in s..<e {
                let dst = out + o * inner
                if !accumulate { dst.update(repeating: 0, count: inner) }
                for j in 0..<n {
                    let src = x + (o * n + j) * inner
                    for i in 0..<inner { dst[i] += src[i] }
                }
            }
        }
    }

    public func reduceMax(x: UnsafePointer<Float>, outer: Int, n: Int, inner: Int, out: UnsafeMutablePointer<Float>) {
        parallelRows(outer, rowCost: n * inner) { s, e in
            for o in s..<e {
                let dst = out + o * inner
                for i in 0..<inner { dst[i] = -.infinity }
                for j in 0..<n {
                    let src = x + (o * n + j) * inner
                    for i in 0..<inner where src[i] > dst[i] || src[i].isNaN { dst[i] = src[i] }
                }
            }
        }
    }

    public func reduceMaxBackward(x: UnsafePointer<Float>, y: UnsafePointer<Float>, gradOut: UnsafePointer<Float>,
                                  outer: Int, n: Int, inner: Int, gradIn: UnsafeMutablePointer<Float>) {
        parallelRows(outer, rowCost: n * inner) { s, e in
            for o in s..<e {
                (gradIn + o * n * inner).update(repeating: 0, count: n * inner)
                for i in 0..<inner {
                    let target = y[o * inner + i]
                    for j in 0..<n where x[(o * n + j) * inner + i] == target || (target.isNaN && x[(o * n + j) * inner + i].isNaN) {
                        gradIn[(o * n + j) * inner + i] = gradOut[o * inner + i]
                        break
                    }
                }
            }
        }
    }

    public func sumOfSquares(x: UnsafePointer<Float>, count: Int) -> Double {
        fixedBlockSum(count: count) { lo, hi in
            var acc: Double = 0
            for j in lo..<hi { let v = Double(x[j]); acc += v * v }
            return acc
        }
    }

    /// One vectorised pass on the calling thread (the same loop the training step's finiteness check always ran):
    /// x·0 is 0 for finite x and NaN for NaN/±Inf, so the sum of x·0 is finite exactly when every x is.
    public func allFinite(x: UnsafePointer<Float>, count n: Int) -> Bool {
        var acc = SIMD8<Float>()
        var i = 0
        while i + 8 <= n {
            acc += UnsafeRawPointer(x + i).loadUnaligned(as: SIMD8<Float>.self) * 0
            i += 8
        }
        var tail: Float = 0
        while i < n { tail += x[i] * 0; i += 1 }
        return (acc.sum() + tail).isFinite
    }
}

/// Σ over fixed 8192-element blocks of `block(lo, hi)`, blocks computed in parallel and combined in
/// block order: the result does not depend on the thread count.
private func fixedBlockSum(count: Int, _ block: (Int, Int) -> Double) -> Double {
    let size = 8192
    let blocks = (count + size - 1) / size
    var partial = [Double](repeating: 0, count: Swift.max(blocks, 1))
    partial.withUnsafeMutableBufferPointer { pp in
        let p = pp.baseAddress!
        parallelFor(blocks, grain: 4) { s, e in
            for b in s..<e { p[b] = block(b * size, Swift.min(count, (b + 1) * size)) }
        }
    }
    return partial.reduce(0, +)
}
