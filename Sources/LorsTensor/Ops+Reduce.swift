/// Reductions over axes.
public extension Tensor {
    /// Sums over `axes` (all axes when empty… use `sum()`), keeping them as size 1 when `keepDims`.
    func sum(axes: [Int], keepDims: Bool = false) -> Tensor {
        let normalized = Array(Set(axes.map { normalizeAxis($0) })).sorted()
        var current = self.detached()
        var curShape = shape
        // Reduce one axis at a time, innermost first, on untracked tensors; record one op.
        for ax in normalized.reversed() {
            let outer = curShape[..<ax].reduce(1, *), n = curShape[ax], inner = curShape[(ax + 1)...].reduce(1, *)
            var outShape = curShape
            outShape[ax] = 1
            let out = Tensor(uninitialized: outShape)
            backend.reduceSum(x: current.pointer, outer: outer, n: n, inner: inner, out: out.pointer, accumulate: false)
            current = out
            curShape = outShape
        }
        let keptShape = curShape
        var finalShape = curShape
        if !keepDims { finalShape = curShape.enumerated().filter { !normalized.contains($0.offset) }.map(\.element) }
        let out = Tensor(storage: current.storage, shape: finalShape, offset: current.offset)
        let original = shape
        return Tape.shared.record("sum", inputs: [self], output: out) { g in [g.detached().reshaped(keptShape).broadcast(to: original)] }
    }

    /// Sum of all elements (a 0-d tensor).
    func sum() -> Tensor { sum(axes: Array(0..<rank)) }

    /// Mean over `axes`.
    func mean(axes: [Int], keepDims: Bool = false) -> Tensor {
        let n = Set(axes.map { normalizeAxis($0) }).map { shape[$0] }.reduce(1, *)
        return sum(axes: axes, keepDims: keepDims).scaled(by: 1 / Float(n))
    }

    /// Mean of all elements.
    func mean() -> Tensor { sum().scaled(by: 1 / Float(count)) }

    /// Maximum over one axis (gradient to the first maximal element).
    func max(axis: Int, keepDims: Bool = false) -> Tensor {
        let ax = normalizeAxis(axis)
        let outer = shape[..<ax].reduce(1, *), n = shape[ax], inner = shape[(ax + 1)...].reduce(1, *)
        var kept = shape
        kept[ax] = 1
        let out = Tensor(uninitialized: keepDims ? kept : shape.enumerated().filter { $0.offset != ax }.map(\.element))
        backend.reduceMax(x: pointer, outer: outer, n: n, inner: inner, out: out.pointer)
        let x = self
        return Tape.shared.record("max", inputs: [self], output: out) { g in
            let gi = Tensor(uninitialized: x.shape)
            x.backend.reduceMaxBackward(x: x.pointer, y: out.pointer, gradOut: g.pointer, outer: outer, n: n, inner: inner, gradIn: gi.pointer)
            return [gi]
        }
    }
}
