/// Shape and layout ops: views where free (reshape, leading-axis ranges), copies otherwise.
public extension Tensor {
    /// Same data, new shape (a view; one dimension may be -1).
    func reshaped(_ newShape: [Int]) -> Tensor {
        var target = newShape
        if let inferred = target.firstIndex(of: -1) {
            let known = target.enumerated().filter { $0.offset != inferred }.map(\.element).reduce(1, *)
            precondition(known > 0 && count % known == 0, "cannot reshape \(shape) to \(newShape)")
            target[inferred] = count / known
        }
        precondition(target.reduce(1, *) == count, "cannot reshape \(shape) (\(count) elements) to \(newShape)")
        if target == shape { return self }
        let out = Tensor(storage: storage, shape: target, offset: offset)
        let original = shape
        return Tape.shared.record("reshape", inputs: [self], output: out) { g in [g.reshaped(original)] }
    }

    /// Flattens dimensions `start...end` into one.
    func flattened(from start: Int = 0, to end: Int = -1) -> Tensor {
        let s = normalizeAxis(start), e = normalizeAxis(end)
        let merged = shape[s...e].reduce(1, *)
        return reshaped(Array(shape[..<s]) + [merged] + Array(shape[(e + 1)...]))
    }

    /// Inserts a dimension of size 1 at `axis`.
    func unsqueezed(_ axis: Int) -> Tensor {
        var s = shape
        s.insert(1, at: axis < 0 ? axis + rank + 1 : axis)
        return reshaped(s)
    }

    /// Materialises broadcasting to `target` (backward sums back).
    func broadcast(to target: [Int]) -> Tensor {
        if target == shape { return self }
        let out = Tensor(uninitialized: target)
        backend.stridedCopy(src: pointer, srcStrides: broadcastStrides(shape, to: target), dst: out.pointer,
                            dstStrides: Tensor.contiguousStrides(target), shape: target, accumulate: false)
        let original = shape
        return Tape.shared.record("broadcast", inputs: [self], output: out) { g in [g.sumTo(original)] }
    }

    /// Reorders dimensions: `out.shape[i] = shape[order[i]]` (copies).
    func permuted(_ order: [Int]) -> Tensor {
        precondition(order.sorted() == Array(0..<rank), "permutation \(order) invalid for shape \(shape)")
        if order == Array(0..<rank) { return self }
        let own = Tensor.contiguousStrides(shape)
        let outShape = order.map { shape[$0] }
        let out = Tensor(uninitialized: outShape)
        backend.stridedCopy(src: pointer, srcStrides: order.map { own[$0] }, dst: out.pointer,
                            dstStrides: Tensor.contiguousStrides(outShape), shape: outShape, accumulate: false)
        var inverse = [Int](repeating: 0, count: rank)
        for (i, o) in order.enumerated() { inverse[o] = i }
        return Tape.shared.record("permute", inputs: [self], output: out) { g in [g.permuted(inverse)] }
    }

    /// Swaps two dimensions (copies).
    func transposed(_ a: Int = -2, _ b: Int = -1) -> Tensor {
        var order = Array(0..<rank)
        order.swapAt(normalizeAxis(a), normalizeAxis(b))
        return permuted(order)
    }

    /// Elements `range` along `axis` (a view when `axis` is the leading non-unit axis, else a copy).
    func slice(axis: Int, _ range: Range<Int>) -> Tensor {
        let ax = normalizeAxis(axis)
        precondition(range.lowerBound >= 0 && range.upperBound <= shape[ax], "slice \(range) out of bounds for axis \(axis) of \(shape)")
        var outShape = shape
        outShape[ax] = range.count
        let original = shape
        let outer = shape[..<ax].reduce(1, *), inner = shape[(ax + 1)...].reduce(1, *)
        if outer == 1 {
            let out = Tensor(storage: storage, shape: outShape, offset: offset + range.lowerBound * inner)
            return Tape.shared.record("slice", inputs: [self], output: out) { g in
                [Tensor.padSlice(g, into: original, axis: ax, start: range.lowerBound)]
            }
        }
        let out = Tensor(uninitialized: outShape)
        backend.stridedCopy(src: pointer + range.lowerBound * inner, srcStrides: [shape[ax] * inner, inner, 1],
                            dst: out.pointer, dstStrides: [range.count * inner, inner, 1],
                            shape: [outer, range.count, inner], accumulate: false)
        return Tape.shared.record("slice", inputs: [self], output: out) { g in
            [Tensor.padSlice(g, into: original, axis: ax, start: range.lowerBound)]
        }
    }

    /// Zeros of `shape` with `part` written at `start` along `axis`.
    internal static func padSlice(_ part: Tensor, into shape: [Int], axis: Int, start: Int) -> Tensor {
        let out = Tensor.zeros(shape)
        let outer = shape[..<axis].reduce(1, *), inner = shape[(axis + 1)...].reduce(1, *)
        let n = part.shape[axis]
        part.backend.stridedCopy(src: part.pointer, srcStrides: [n * inner, inner, 1],
                                 dst: out.pointer + start * inner, dstStrides: [shape[axis] * inner, inner, 1],
                                 shape: [outer, n, inner], accumulate: false)
        return out
    }

    /// Splits along `axis` into parts of the given sizes (which must add up to the axis).
    func split(axis: Int, sizes: [Int]) -> [Tensor] {
        let ax = normalizeAxis(axis)
        precondition(sizes.reduce(0, +) == shape[ax], "split sizes \(sizes) do not add up to \(shape[ax]) (axis \(axis) of \(shape))")
        var start = 0
        return sizes.map { n in
            defer { start += n }
            return slice(axis: ax, start..<(start + n))
        }
    }

    /// Splits along `axis` into `parts` equal chunks.
    func chunked(_ parts: Int, axis: Int) -> [Tensor] {
        let ax = normalizeAxis(axis)
        precondition(shape[ax] % parts == 0, "axis \(axis) of \(shape) not divisible into \(parts) chunks")
        return split(axis: ax, sizes: [Int](repeating: shape[ax] / parts, count: parts))
    }

    /// Concatenates tensors along `axis` (all other dimensions equal).
    static func concat(_ tensors: [Tensor], axis: Int) -> Tensor {
        precondition(!tensors.isEmpty, "concat of no tensors")
        let ax = tensors[0].normalizeAxis(axis)
        var outShape = tensors[0].shape
        outShape[ax] = 0
        for t in tensors {
            var a = t.shape, b = tensors[0].shape
            a[ax] = 0; b[ax] = 0
            precondition(a == b, "concat along axis \(axis): shapes \(tensors[0].shape) and \(t.shape) differ elsewhere")
            outShape[ax] += t.shape[ax]
        }
        let out = Tensor(uninitialized: outShape)
        let outer = outShape[..<ax].reduce(1, *), inner = outShape[(ax + 1)...].reduce(1, *)
        var start = 0
        var sizes: [Int] = []
        for t in tensors {
            let n = t.shape[ax]
            t.backend.stridedCopy(src: t.pointer, srcStrides: [n * inner, inner, 1], dst: out.pointer + start * inner,
                                  dstStrides: [outShape[ax] * inner, inner, 1], shape: [outer, n, inner], accumulate: false)
            start += n
            sizes.append(n)
        }
        return Tape.shared.record("concat", inputs: tensors, output: out) { g in
            g.detached().reshaped(outShape).split(axis: ax, sizes: sizes).map { $0 }
        }
    }

    /// Stacks equal-shaped tensors along a new axis.
    static func stack(_ tensors: [Tensor], axis: Int = 0) -> Tensor {
        concat(tensors.map { $0.unsqueezed(axis) }, axis: axis)
    }

    /// Rows `indices` along `axis` (gather): `out.shape[axis] = indices.count`.
    func indexSelect(axis: Int, _ indices: [Int32]) -> Tensor {
        let ax = normalizeAxis(axis)
        let n = shape[ax]
        for i in indices { precondition(i >= 0 && Int(i) < n, "index \(i) out of range 0..<\(n) (axis \(axis) of \(shape))") }
        var outShape = shape
        outShape[ax] = indices.count
        let out = Tensor(uninitialized: outShape)
        let outer = shape[..<ax].reduce(1, *), inner = shape[(ax + 1)...].reduce(1, *)
        indices.withUnsafeBufferPointer {
            backend.gather(x: pointer, outer: outer, n: n, inner: inner, indices: $0.baseAddress!, indexCount: indices.count, out: out.pointer)
        }
        let original = shape
        return Tape.shared.record("index_select", inputs: [self], output: out) { g in
            [g.scatterAdd(axis: ax, indices, size: original[ax])]
        }
    }

    /// Scatter-add: a tensor whose `axis` has `size` entries, zero except `out[..., indices[j], ...] += self[..., j, ...]`.
    func scatterAdd(axis: Int, _ indices: [Int32], size: Int) -> Tensor {
        let ax = normalizeAxis(axis)
        precondition(shape[ax] == indices.count, "scatterAdd: \(indices.count) indices for axis \(axis) of \(shape)")
        for i in indices { precondition(i >= 0 && Int(i) < size, "index \(i) out of range 0..<\(size)") }
        var outShape = shape
        outShape[ax] = size
        let out = Tensor.zeros(outShape)
        let outer = shape[..<ax].reduce(1, *), inner = shape[(ax + 1)...].reduce(1, *)
        indices.withUnsafeBufferPointer {
            backend.scatterAdd(src: pointer, outer: outer, indexCount: indices.count, inner: inner, indices: $0.baseAddress!,
                               out: out.pointer, n: size)
        }
        return Tape.shared.record("scatter_add", inputs: [self], output: out) { g in [g.indexSelect(axis: ax, indices)] }
    }
}
