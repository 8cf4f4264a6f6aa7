/// Softmax, log-softmax and dropout.
public extension Tensor {
    private func softmaxImpl(axis: Int, log: Bool) -> Tensor {
        let ax = normalizeAxis(axis)
        let outer = shape[..<ax].reduce(1, *), n = shape[ax], inner = shape[(ax + 1)...].reduce(1, *)
        let out = Tensor(uninitialized: shape)
        backend.softmax(x: pointer, outer: outer, n: n, inner: inner, out: out.pointer, log: log)
        let x = self
        return Tape.shared.record(log ? "log_softmax" : "softmax", inputs: [self], output: out) { g in
            let gi = Tensor(uninitialized: x.shape)
            x.backend.softmaxBackward(y: out.pointer, gradOut: g.pointer, outer: outer, n: n, inner: inner, gradIn: gi.pointer, log: log)
            return [gi]
        }
    }

    /// Softmax over `axis`.
    func softmax(axis: Int = -1) -> Tensor { softmaxImpl(axis: axis, log: false) }

    /// Log-softmax over `axis` (numerically stable).
    func logSoftmax(axis: Int = -1) -> Tensor { softmaxImpl(axis: axis, log: true) }

    /// Inverted dropout: zeroes each element with probability `p` and scales survivors by 1/(1−p).
    ///
    /// The mask of row `r` (leading axis) is drawn from `key` with sample index `firstRow + r`:
    /// pass the global index of this rank's first sample so masks do not depend on the rank layout.
    func dropout(_ p: Float, key: RandomKey, firstRow: Int = 0, training: Bool = true) -> Tensor {
        precondition(p >= 0 && p < 1, "dropout probability \(p) not in [0, 1)")
        if !training || p == 0 { return self }
        let rows = rank == 0 ? 1 : shape[0]
        let keep = Tensor(uninitialized: shape)
        backend.dropoutMask(keep.pointer, rows: rows, rowLength: count / Swift.max(rows, 1), key: key, firstRow: firstRow, p: p)
        return self.mul(keep)
    }
}
