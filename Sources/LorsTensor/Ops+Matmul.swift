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

public extension Tensor {
    /// `y = x Wᵀ + b`: x `[..., in]`, W `[out, in]`, b `[out]` → `[..., out]`: block by block the bias rows are
    /// copied into the (cached) output block and the product accumulates onto them (`linearForward`), saving the
    /// separate broadcast-add pass and OpenBLAS's zeroing pass of the unfused form.
    func linear(weight: Tensor, bias: Tensor?) -> Tensor {
        let inFeatures = shape[rank - 1], outFeatures = weight.shape[0]
        precondition(weight.rank == 2 && weight.shape[1] == inFeatures,
                     "linear: input \(shape) does not match weight \(weight.shape) ([out, in])")
        precondition(bias == nil || bias!.shape == [outFeatures], "linear: bias \(bias!.shape) for \(outFeatures) outputs")
        let rows = count / Swift.max(inFeatures, 1)
        let out = Tensor(uninitialized: Array(shape.dropLast()) + [outFeatures])
        backend.linearForward(x: pointer, rows: rows, inFeatures: inFeatures, weight: weight.pointer, bias: bias?.pointer,
                              outFeatures: outFeatures, out: out.pointer, geluOut: nil)
        let x = self
        let inputs = bias.map { [x, weight, $0] } ?? [x, weight]
        return Tape.shared.record("linear", inputs: inputs, output: out) { g in
            Tensor.linearGradients(g.reshaped([rows, outFeatures]), input: x, weight: weight, bias: bias)
        }
    }

    /// The gradients `[dx, dW]` (plus `db` when there is a bias) of `y = x Wᵀ + b` from `g2` = dy as `[rows, out]`;
    /// nil where an input needs none. dx has x's shape.
    internal static func linearGradients(_ g2: Tensor, input x: Tensor, weight: Tensor, bias: Tensor?) -> [Tensor?] {
        let gx = x.requiresGrad ? g2.matmul(weight).reshaped(x.shape) : nil
        let gw = weight.requiresGrad ? g2.matmul(x.reshaped([g2.shape[0], weight.shape[1]]), transposeSelf: true) : nil
        var grads: [Tensor?] = [gx, gw]
        if let bias { grads.append(bias.requiresGrad ? g2.sum(axes: [0]) : nil) }
        return grads
    }
}

public extension Tensor {
    /// The transformer MLP `fc2(GELU(fc1(x)))` as one recorded op: x `[..., in]`, w1 `[hidden, in]`, w2 `[out, hidden]`
    /// (biases optional) → `[..., out]`. The same values, bit for bit, as `x.linear(w1, b1).gelu().linear(w2, b2)`,
    /// forward and backward; GELU runs on each output block of fc1 while it is in cache, and in the backward the
    /// gradient at fc1's output is formed block by block from fc2's input gradient (never written at the GELU output).
    static func mlpGELU(_ x: Tensor, weight1 w1: Tensor, bias1 b1: Tensor?, weight2 w2: Tensor, bias2 b2: Tensor?) -> Tensor {
        let inFeatures = x.shape[x.rank - 1], hidden = w1.shape[0], outFeatures = w2.shape[0]
        precondition(w1.rank == 2 && w1.shape[1] == inFeatures && w2.rank == 2 && w2.shape[1] == hidden,
                     "mlpGELU: input \(x.shape), fc1 weight \(w1.shape), fc2 weight \(w2.shape) ([out, in] each)")
        precondition(b1 == nil || b1!.shape == [hidden], "mlpGELU: fc1 bias \(b1!.shape) for \(hidden) outputs")
        precondition(b2 == nil || b2!.shape == [outFeatures], "mlpGELU: fc2 bias \(b2!.shape) for \(outFeatures) outputs")
        let rows = x.count / Swift.max(inFeatures, 1), backend = x.backend
        let pre = Tensor(uninitialized: [rows, hidden]), act = Tensor(uninitialized: [rows, hidden])
        backend.linearForward(x: x.pointer, rows: rows, inFeatures: inFeatures, weight: w1.pointer, bias: b1?.pointer,
                              outFeatures: hidden, out: pre.pointer, geluOut: act.pointer)
        let out = Tensor(uninitialized: Array(x.shape.dropLast()) + [outFeatures])
        backend.linearForward(x: act.pointer, rows: rows, inFeatures: hidden, weight: w2.pointer, bias: b2?.pointer,
                              outFeatures: outFeatures, out: out.pointer, geluOut: nil)
        let inputs = [x, w1, w2] + [b1, b2].compactMap { $0 }
        return Tape.shared.record("mlp_gelu", inputs: inputs, output: out) { g in
            let g2 = g.reshaped([rows, outFeatures])
            // fc2's input (act) is internal, so only [nil, dW2, db2?] from it.
            let fc2 = Tensor.linearGradients(g2, input: act, weight: w2, bias: b2)
            let gradPre = Tensor(uninitialized: [rows, hidden])
            backend.linearInputGradientThroughGELU(gradOut: g2.pointer, rows: rows, outFeatures: outFeatures, weight: w2.pointer,
                                                   inFeatures: hidden, preActivation: pre.pointer, gradIn: gradPre.pointer)
            let fc1 = Tensor.linearGradients(gradPre, input: x, weight: w1, bias: b1)
            // Inputs are [x, w1, w2, b1?, b2?].
            return [fc1[0], fc1[1], fc2[1]] + fc1.dropFirst(2) + fc2.dropFirst(2)
        }
    }
}
