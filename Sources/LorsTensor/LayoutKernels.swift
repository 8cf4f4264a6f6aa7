/// Data movement: strided copies (permute, concat, slice), gathers and scatter-adds.
public protocol LayoutKernels {
    /// `dst[idx · dstStrides] = src[idx · srcStrides]` for every index of `shape` (or `+=` when `accumulate`).
    func stridedCopy(src: UnsafePointer<Float>, srcStrides: [Int], dst: UnsafeMutablePointer<Float>, dstStrides: [Int],
                     shape: [Int], accumulate: Bool)
    /// `out[o, j, i] = x[o, indices[j], i]` with `x` of `[outer, n, inner]`, `out` of `[outer, indices.count, inner]`.
    func gather(x: UnsafePointer<Float>, outer: Int, n: Int, inner: Int, indices: UnsafePointer<Int32>, indexCount: Int,
                out: UnsafeMutablePointer<Float>)
    /// `out[o, indices[j], i] += src[o, j, i]` (serial over `j` per row, so duplicates add deterministically).
    func scatterAdd(src: UnsafePointer<Float>, outer: Int, indexCount: Int, inner: Int, indices: UnsafePointer<Int32>,
                    out: UnsafeMutablePointer<Float>, n: Int)
}

extension CPUBackend: LayoutKernels {
    public func stridedCopy(src: UnsafePointer<Float>, srcStrides: [Int], dst: UnsafeMutablePointer<Float>, dstStrides: [Int],
                            shape: [Int], accumulate: Bool) {
        let count = shape.reduce(1, *)
        if count == 0 { return }
        let rank = shape.count
        if rank == 0 { dst[0] = accumulate ? dst[0] + src[0] : src[0]; return }
        let inner = shape[rank - 1]
        let si = srcStrides[rank - 1], di = dstStrides[rank - 1]
        forEachStridedRow(shape: shape, stridesA: srcStrides, stridesB: dstStrides) { _, so, dO in
            let sp = src + so, dp = dst + dO
            if accumulate {
                if si == 1 && di == 1 { for i in 0..<inner { dp[i] += sp[i] } } else { for i in 0..<inner { dp[i * di] += sp[i * si] } }
            } else {
                if si == 1 && di == 1 { dp.update(from: sp, count: inner) } else { for i in 0..<inner { dp[i * di] = sp[i * si] } }
            }
        }
    }

    public func gather(x: UnsafePointer<Float>, outer: Int, n: Int, inner: Int, indices: UnsafePointer<Int32>, indexCount: Int,
                       out: UnsafeMutablePointer<Float>) {
        parallelRows(outer * indexCount, rowCost: inner) { s, e in
            for r in s..<e {
                let o = r / indexCount, j = r % indexCount
                (out + r * inner).update(from: x + (o * n + Int(indices[j])) * inner, count: inner)
            }
        }
    }

    public func scatterAdd(src: UnsafePointer<Float>, outer: Int, indexCount: Int, inner: Int, indices: UnsafePointer<Int32>,
                           out: UnsafeMutablePointer<Float>, n: Int) {
        // Tasks are (row, column block) pairs: each output element is owned by one task, which adds the
        // sources in index order, so duplicates accumulate identically for any thread count. Column blocks
        // keep an embedding-style scatter (outer = 1) parallel.
        let block = 64
        let blocks = (inner + block - 1) / block
        parallelRows(outer * blocks, rowCost: indexCount * Swift.min(inner, block)) { s, e in
            for task in s..<e {
                let o = task / blocks, lo = (task % blocks) * block, hi = Swift.min(inner, lo + block)
                for j in 0..<indexCount {
                    let dp = out + (o * n + Int(indices[j])) * inner
                    let sp = src + (o * indexCount + j) * inner
                    for i in lo..<hi { dp[i] += sp[i] }
                }
            }
        }
    }
}

/// Walks the rows (all indices but the innermost) of `shape` in `[s, e)` for each chunk `parallelRows`
/// hands out, calling `body(row, offsetA, offsetB)` with each row's element offsets under two stride
/// sets. Shared by the strided copy and the general broadcasting binary kernel.
@inline(__always)
func forEachStridedRow(shape: [Int], stridesA: [Int], stridesB: [Int], _ body: (Int, Int, Int) -> Void) {
    let rank = shape.count
    let inner = shape[rank - 1]
    let rows = shape.reduce(1, *) / inner
    parallelRows(rows, rowCost: inner) { s, e in
        var idx = [Int](repeating: 0, count: rank)
        var rem = s
        for d in stride(from: rank - 2, through: 0, by: -1) { idx[d] = rem % shape[d]; rem /= shape[d] }
        for r in s..<e {
            var offsetA = 0, offsetB = 0
            for d in 0..<(rank - 1) { offsetA += idx[d] * stridesA[d]; offsetB += idx[d] * stridesB[d] }
            body(r, offsetA, offsetB)
            var d = rank - 2
            while d >= 0 { idx[d] += 1; if idx[d] < shape[d] { break }; idx[d] = 0; d -= 1 }
        }
    }
}
