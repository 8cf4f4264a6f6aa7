/// Embedding lookup: rows of a `[V, D]` table gathered by index; backward scatter-adds into `[V, D]`.
public extension Tensor {
    /// Embedding lookup `out[j, :] = weight[indices[j], :]`: `weight` is `[V, D]`, the result `[indices.count, D]`.
    ///
    /// Backward: `gradWeight[v, :] = Σ_{j : indices[j] = v} gradOut[j, :]`, a deterministic scatter-add
    /// (repeated indices accumulate in index order). Every index must lie in `0..<V`.
    static func embedding(weight: Tensor, indices: [Int32]) -> Tensor {
        precondition(weight.rank == 2, "embedding weight must be [V, D], got \(weight.shape)")
        let vocabulary = weight.shape[0], width = weight.shape[1]
        for (k, i) in indices.enumerated() {
            precondition(i >= 0 && Int(i) < vocabulary,
                         "embedding: index \(i) at position \(k) out of range for vocabulary size \(vocabulary)\(weight.name.isEmpty ? "" : " ('\(weight.name)')")")
        }
        let out = Tensor(uninitialized: [indices.count, width])
        indices.withUnsafeBufferPointer {
            weight.backend.gather(x: weight.pointer, outer: 1, n: vocabulary, inner: width, indices: $0.baseAddress!,
                                  indexCount: indices.count, out: out.pointer)
        }
        return Tape.shared.record("embedding", inputs: [weight], output: out) { g in
            let gw = Tensor.zeros(weight.shape)
            indices.withUnsafeBufferPointer {
                weight.backend.scatterAdd(src: g.pointer, outer: 1, indexCount: indices.count, inner: width, indices: $0.baseAddress!,
                                          out: gw.pointer, n: vocabulary)
            }
            return [gw]
        }
    }

    /// Embedding lookup for an index array of `shape` (row-major, `indices.count == Π shape`): the result is
    /// `shape + [D]`, e.g. token ids `[B, T]` → `[B, T, D]`. Same semantics and backward as `embedding(weight:indices:)`.
    static func embedding(weight: Tensor, indices: [Int32], shape: [Int]) -> Tensor {
        precondition(shape.reduce(1, *) == indices.count, "embedding: \(indices.count) indices do not fill shape \(shape)")
        precondition(weight.rank == 2, "embedding weight must be [V, D], got \(weight.shape)")
        return embedding(weight: weight, indices: indices).reshaped(shape + [weight.shape[1]])
    }
}
