/// Matrix products through sgemm; transposed operands are passed as flags, never copied.
public extension Tensor {
    /// `op(self) · op(other)` where op transposes the last two dimensions when asked.
    ///
    /// `self` is `[..., M, K]` (`[..., K, M]` if `transposeSelf`), `other` is `[K, N]` or
    /// `[..., K, N]` with the same leading dimensions (`[..., N, K]` if `transposeOther`);
    /// the result is `[..., M, N]`. A 2-D `other` against a batched `self` folds the batch
    /// into M: one large sgemm.
    func matmul(_ other: Tensor, transposeSelf: Bool = false, transposeOther: Bool = false) -> Tensor {
        let a = self, b = other
        precondition(a.rank >= 2 && b.rank >= 2, "matmul needs rank ≥ 2, got \(a.shape) and \(b.shape)")
        let m = transposeSelf ? a.shape[a.rank - 1] : a.shape[a.rank - 2]
        let k = transposeSelf ? a.shape[a.rank - 2] : a.shape[a.rank - 1]
        let kb = transposeOther ? b.shape[b.rank - 1] : b.shape[b.rank - 2]
        let n = transposeOther ? b.shape[b.rank - 2] : b.shape[b.rank - 1]
        precondition(k == kb, "matmul inner dimensions differ: \(a.shape)\(transposeSelf ? "ᵀ" : "") · \(b.shape)\(transposeOther ? "ᵀ" : "")")
        let batchA = Array(a.shape.dropLast(2)), batchB = Array(b.shape.dropLast(2))
        let batchShape: [Int]
        if b.rank == 2 { batchShape = batchA } else if a.rank == 2 { batchShape = batchB } else {
            precondition(batchA == batchB, "matmul batch dimensions differ: \(a.shape) · \(b.shape)")
            batchShape = batchA
        }
        let batch = batchShape.reduce(1, *)
        let out = Tensor(uninitialized: batchShape + [m, n])
        let lda = a.shape[a.rank - 1], ldb = b.shape[b.rank - 1]
        if b.rank == 2 && !transposeSelf {
            // Fold the batch of A into its rows.
            a.backend.gemm(transposeA: false, transposeB: transposeOther, m: batch * m, n: n, k: k, alpha: 1,
                           a: a.pointer, lda: lda, strideA: 0, b: b.pointer, ldb: ldb, strideB: 0,
                           beta: 0, c: out.pointer, ldc: n, strideC: 0, batch: 1)
        } else {
            a.backend.gemm(transposeA: transposeSelf, transposeB: transposeOther, m: m, n: n, k: k, alpha: 1,
                           a: a.pointer, lda: lda, strideA: a.rank == 2 ? 0 : m * k,
                           b: b.pointer, ldb: ldb, strideB: b.rank == 2 ? 0 : k * n,
                           beta: 0, c: out.pointer, ldc: n, strideC: m * n, batch: batch)
        }
        return Tape.shared.record("matmul", inputs: [a, b], output: out) { g in
            var ga: Tensor? = nil, gb: Tensor? = nil
            if a.requiresGrad {
                // dA = dC · op(B)ᵀ, or for stored Aᵀ: op(B) · dCᵀ
                ga = transposeSelf ? b.matmul(g, transposeSelf: transposeOther, transposeOther: true)
                                   : g.matmul(b, transposeSelf: false, transposeOther: !transposeOther)
                if ga!.rank > a.rank { ga = ga!.sumTo(a.shape) }
            }
            if b.requiresGrad {
                if b.rank == 2 && a.rank > 2 && !transposeSelf {
                    // Batch folded into rows: one product sums over the batch.
                    let a2 = a.detached().reshaped([batch * m, k]), g2 = g.detached().reshaped([batch * m, n])
                    gb = transposeOther ? g2.matmul(a2, transposeSelf: true) : a2.matmul(g2, transposeSelf: true)
                } else {
                    gb = transposeOther ? g.matmul(a, transposeSelf: true, transposeOther: transposeSelf)
                                        : a.matmul(g, transposeSelf: !transposeSelf, transposeOther: false)
                    if gb!.rank > b.rank { gb = gb!.sumTo(b.shape) }
                }
            }
            return [ga, gb]
        }
    }
}
