import CBLAS

/// Fused multi-head self-attention on the packed qkv projection `[B, T, 3·D]` (q, k, v blocks of D features, the
/// H heads' `hd = D/H` features side by side: the timm/DeiT layout). One (sample, head) item at a time stays in
/// cache: scores, softmax and the value product in one pass forward; dP, dS, dq, dk, dv in one pass backward, each
/// gradient written exactly once (no zero-filled buffers, no accumulation of partial qkv gradients).
public protocol AttentionKernels {
    /// `probs[b, h] = softmax(scale · q[b, h] · k[b, h]ᵀ)` (`[B, H, Q, T]`, kept for the backward) and
    /// `out[b, :, h·hd ..< (h+1)·hd] = probs[b, h] · v[b, h]` (`[B, Q, D]`), for the first Q = `queries` query
    /// tokens (all T for self-attention; 1 when only the class token's output is used).
    func attentionForward(qkv: UnsafePointer<Float>, batch: Int, tokens: Int, queries: Int, dim: Int, heads: Int, scale: Float,
                          probs: UnsafeMutablePointer<Float>, out: UnsafeMutablePointer<Float>)
    /// The gradient of `attentionForward`'s `out` with respect to the packed qkv: dv = Pᵀ·dO, dS = P ⊙ (dP − Σ dP·P)
    /// with dP = dO·vᵀ, dq = scale·dS·k, dk = scale·dSᵀ·q, all written into `gradQKV` (`[B, T, 3·D]`, every element;
    /// zeros for the q rows past `queries`).
    func attentionBackward(qkv: UnsafePointer<Float>, probs: UnsafePointer<Float>, gradOut: UnsafePointer<Float>,
                           batch: Int, tokens: Int, queries: Int, dim: Int, heads: Int, scale: Float,
                           gradQKV: UnsafeMutablePointer<Float>)
}

extension CPUBackend: AttentionKernels {
    public func attentionForward(qkv: UnsafePointer<Float>, batch: Int, tokens t: Int, queries tq: Int, dim d: Int, heads: Int,
                                 scale: Float, probs: UnsafeMutablePointer<Float>, out: UnsafeMutablePointer<Float>) {
        let hd = d / heads, ld = Int32(3 * d), tt = Int32(t), q32 = Int32(tq), h32 = Int32(hd)
        parallelFor(batch * heads, grain: attentionGrain(tq, t, hd)) { s, e in
            for item in s..<e {
                let b = item / heads, h = item % heads
                let q = qkv + b * t * 3 * d + h * hd, k = q + d, v = q + 2 * d
                let p = probs + item * tq * t
                sgemm(CblasNoTrans, CblasTrans, q32, tt, h32, scale, q, ld, k, ld, 0, p, tt)
                for r in 0..<tq { softmaxRow(p + r * t, p + r * t, t) }
                sgemm(CblasNoTrans, CblasNoTrans, q32, h32, tt, 1, p, tt, v, ld, 0,
                            out + b * tq * d + h * hd, Int32(d))
            }
        }
    }

    public func attentionBackward(qkv: UnsafePointer<Float>, probs: UnsafePointer<Float>, gradOut: UnsafePointer<Float>,
                                  batch: Int, tokens t: Int, queries tq: Int, dim d: Int, heads: Int, scale: Float,
                                  gradQKV: UnsafeMutablePointer<Float>) {
        let hd = d / heads, ld = Int32(3 * d), tt = Int32(t), q32 = Int32(tq), h32 = Int32(hd)
        parallelFor(batch * heads, grain: attentionGrain(tq, t, hd)) { s, e in
            // dP / dS of one item: Q×T floats, reused for every item of this chunk.
            let ds = UnsafeMutablePointer<Float>.allocate(capacity: tq * t)
            defer { ds.deallocate() }
            for item in s..<e {
                let b = item / heads, h = item % heads
                let offset = b * t * 3 * d + h * hd
                let q = qkv + offset, k = q + d, v = q + 2 * d
                let gq = gradQKV + offset, gk = gq + d, gv = gq + 2 * d
                let p = probs + item * tq * t, g = gradOut + b * tq * d + h * hd
                sgemm(CblasNoTrans, CblasTrans, q32, tt, h32, 1, g, Int32(d), v, ld, 0, ds, tt)
                sgemm(CblasTrans, CblasNoTrans, tt, h32, q32, 1, p, tt, g, Int32(d), 0, gv, ld)
                for r in 0..<tq { softmaxBackwardRow(p + r * t, ds + r * t, ds + r * t, t) }
                sgemm(CblasNoTrans, CblasNoTrans, q32, h32, tt, scale, ds, tt, k, ld, 0, gq, ld)
                sgemm(CblasTrans, CblasNoTrans, tt, h32, q32, scale, ds, tt, q, ld, 0, gk, ld)
                for r in tq..<t { (gq + r * 3 * d).update(repeating: 0, count: hd) }
            }
        }
    }
}

/// Items per chunk so that a chunk holds about 2 MFLOP (each item is 4·Q·T·hd FLOPs forward).
private func attentionGrain(_ tq: Int, _ t: Int, _ hd: Int) -> Int { Swift.max(1, 2_000_000 / Swift.max(1, 4 * tq * t * hd)) }
