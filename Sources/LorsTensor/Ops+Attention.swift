/// Multi-head attention products that read q, k and v straight out of the packed qkv projection.
///
/// `qkv` is `[B, T, 3·D]`: q, k, v blocks of D features, each the H heads' `hd = D/H` features side
/// by side (the timm/DeiT layout). Head h of sample b is a `[T, hd]` matrix with leading dimension 3·D,
/// so every product is an sgemm on strided operands (`gemmGrid` over (b, h)): no permute copies of
/// q, k, v or of the output, forward or backward.
public extension Tensor {
    /// `scores[b, h] = scale · q[b, h] · k[b, h]ᵀ` → `[B, H, T, T]`.
    static func attentionScores(qkv: Tensor, heads: Int, scale: Float) -> Tensor {
        let (b, t, d, hd) = attentionShape(qkv, heads)
        let out = Tensor(uninitialized: [b, heads, t, t])
        let backend = qkv.backend
        backend.gemmGrid(transposeA: false, transposeB: true, m: t, n: t, k: hd, alpha: scale,
                         a: qkv.pointer, lda: 3 * d, outerA: t * 3 * d, innerA: hd,
                         b: qkv.pointer + d, ldb: 3 * d, outerB: t * 3 * d, innerB: hd,
                         beta: 0, c: out.pointer, ldc: t, outerC: heads * t * t, innerC: t * t, outer: b, inner: heads)
        return Tape.shared.record("attention_scores", inputs: [qkv], output: out) { g in
            // dq = scale · dS · k ;  dk = scale · dSᵀ · q ; the v block gets no gradient here.
            let grad = Tensor.zeros(qkv.shape)
            backend.gemmGrid(transposeA: false, transposeB: false, m: t, n: hd, k: t, alpha: scale,
                             a: g.pointer, lda: t, outerA: heads * t * t, innerA: t * t,
                             b: qkv.pointer + d, ldb: 3 * d, outerB: t * 3 * d, innerB: hd,
                             beta: 0, c: grad.pointer, ldc: 3 * d, outerC: t * 3 * d, innerC: hd, outer: b, inner: heads)
            backend.gemmGrid(transposeA: true, transposeB: false, m: t, n: hd, k: t, alpha: scale,
                             a: g.pointer, lda: t, outerA: heads * t * t, innerA: t * t,
                             b: qkv.pointer, ldb: 3 * d, outerB: t * 3 * d, innerB: hd,
                             beta: 0, c: grad.pointer + d, ldc: 3 * d, outerC: t * 3 * d, innerC: hd, outer: b, inner: heads)
            return [grad]
        }
    }

    /// `out[b, :, h·hd ..< (h+1)·hd] = probs[b, h] · v[b, h]` → `[B, T, D]` (heads concatenated).
    static func attentionValues(probs: Tensor, qkv: Tensor, heads: Int) -> Tensor {
        let (b, t, d, hd) = attentionShape(qkv, heads)
        precondition(probs.shape == [b, heads, t, t], "attention probabilities \(probs.shape), expected \([b, heads, t, t])")
        let out = Tensor(uninitialized: [b, t, d])
        let backend = qkv.backend
        backend.gemmGrid(transposeA: false, transposeB: false, m: t, n: hd, k: t, alpha: 1,
                         a: probs.pointer, lda: t, outerA: heads * t * t, innerA: t * t,
                         b: qkv.pointer + 2 * d, ldb: 3 * d, outerB: t * 3 * d, innerB: hd,
                         beta: 0, c: out.pointer, ldc: d, outerC: t * d, innerC: hd, outer: b, inner: heads)
        return Tape.shared.record("attention_values", inputs: [probs, qkv], output: out) { g in
            // dP = dO · vᵀ ;  dv = Pᵀ · dO (into the v block; q and k blocks get no gradient here).
            var gp: Tensor? = nil, gqkv: Tensor? = nil
            if probs.requiresGrad {
                let p = Tensor(uninitialized: probs.shape)
                backend.gemmGrid(transposeA: false, transposeB: true, m: t, n: t, k: hd, alpha: 1,
                                 a: g.pointer, lda: d, outerA: t * d, innerA: hd,
                                 b: qkv.pointer + 2 * d, ldb: 3 * d, outerB: t * 3 * d, innerB: hd,
                                 beta: 0, c: p.pointer, ldc: t, outerC: heads * t * t, innerC: t * t, outer: b, inner: heads)
                gp = p
            }
            if qkv.requiresGrad {
                let q = Tensor.zeros(qkv.shape)
                backend.gemmGrid(transposeA: true, transposeB: false, m: t, n: hd, k: t, alpha: 1,
                                 a: probs.pointer, lda: t, outerA: heads * t * t, innerA: t * t,
                                 b: g.pointer, ldb: d, outerB: t * d, innerB: hd,
                                 beta: 0, c: q.pointer + 2 * d, ldc: 3 * d, outerC: t * 3 * d, innerC: hd, outer: b, inner: heads)
                gqkv = q
            }
            return [gp, gqkv]
        }
    }

    /// Fused `softmax(scale · q kᵀ) · v` over all (b, h) → `[B, Q, D]` (heads concatenated) for the first Q =
    /// `queries` query tokens (default: all T). With all queries: the same values as
    /// `attentionValues(probs: attentionScores(...).softmax(axis: -1), ...)`, bit for bit, forward and backward,
    /// in one pass per head that stays in cache and writes the qkv gradient once. Fewer queries serve a block whose
    /// later tokens' outputs are never used (the last block of a class-token ViT): keys and values still come from
    /// every token.
    static func selfAttention(qkv: Tensor, heads: Int, scale: Float, queries: Int? = nil) -> Tensor {
        let (b, t, d, _) = attentionShape(qkv, heads)
        let tq = queries ?? t
        precondition(tq >= 1 && tq <= t, "selfAttention: \(tq) queries of \(t) tokens")
        let probs = Tensor(uninitialized: [b, heads, tq, t])
        let out = Tensor(uninitialized: [b, tq, d])
        let backend = qkv.backend
        backend.attentionForward(qkv: qkv.pointer, batch: b, tokens: t, queries: tq, dim: d, heads: heads, scale: scale,
                                 probs: probs.pointer, out: out.pointer)
        return Tape.shared.record("self_attention", inputs: [qkv], output: out) { g in
            let grad = Tensor(uninitialized: qkv.shape)
            backend.attentionBackward(qkv: qkv.pointer, probs: probs.pointer, gradOut: g.pointer, batch: b, tokens: t,
                                      queries: tq, dim: d, heads: heads, scale: scale, gradQKV: grad.pointer)
            return [grad]
        }
    }

    private static func attentionShape(_ qkv: Tensor, _ heads: Int) -> (Int, Int, Int, Int) {
        precondition(qkv.rank == 3 && qkv.shape[2] % (3 * heads) == 0,
                     "packed qkv must be [B, T, 3·D] with D divisible by \(heads) heads, got \(qkv.shape)")
        let d = qkv.shape[2] / 3
        return (qkv.shape[0], qkv.shape[1], d, d / heads)
    }
}
