/// Elementwise ops with NumPy broadcasting, scalar ops and unary math; each backward beside its forward.

/// Shape of broadcasting `a` with `b` (NumPy rules); traps with both shapes on mismatch.
public func broadcastShape(_ a: [Int], _ b: [Int]) -> [Int] {
    let rank = max(a.count, b.count)
    var out = [Int](repeating: 1, count: rank)
    for i in 0..<rank {
        let da = i < rank - a.count ? 1 : a[i - (rank - a.count)]
        let db = i < rank - b.count ? 1 : b[i - (rank - b.count)]
        precondition(da == db || da == 1 || db == 1, "shapes \(a) and \(b) do not broadcast")
        out[i] = da == 1 ? db : da
    }
    return out
}

/// Strides that read a contiguous tensor of `shape` as if expanded to `target` (0 on broadcast axes).
func broadcastStrides(_ shape: [Int], to target: [Int]) -> [Int] {
    let own = Tensor.contiguousStrides(shape)
    var out = [Int](repeating: 0, count: target.count)
    let shift = target.count - shape.count
    for i in 0..<shape.count where shape[i] != 1 || target[i + shift] == 1 {
        out[i + shift] = shape[i] == 1 ? 0 : own[i]
    }
    return out
}

public extension Tensor {
    /// Sums this tensor down to `target` (the inverse of broadcasting; used by backward passes).
    func sumTo(_ target: [Int]) -> Tensor {
        if shape == target { return self }
        if target.reduce(1, *) == count { return reshaped(target) }
        let shift = rank - target.count
        var axes: [Int] = Array(0..<shift)
        for i in 0..<target.count where target[i] == 1 && shape[i + shift] != 1 { axes.append(i + shift) }
        return sum(axes: axes, keepDims: true).reshaped(target)
    }

    private static func binaryOp(_ op: BinaryOp, _ a: Tensor, _ b: Tensor) -> Tensor {
        let shape = broadcastShape(a.shape, b.shape)
        let out = Tensor(uninitialized: shape)
        a.backend.binary(op, a: a.pointer, aStrides: broadcastStrides(a.shape, to: shape), b: b.pointer,
                         bStrides: broadcastStrides(b.shape, to: shape), out: out.pointer, shape: shape)
        return out
    }

    /// `self + other` with broadcasting.
    func add(_ other: Tensor) -> Tensor {
        let out = Tensor.binaryOp(.add, self, other)
        let (sa, sb) = (shape, other.shape)
        return Tape.shared.record("add", inputs: [self, other], output: out) { g in [g.sumTo(sa), g.sumTo(sb)] }
    }

    /// `self - other` with broadcasting.
    func sub(_ other: Tensor) -> Tensor {
        let out = Tensor.binaryOp(.sub, self, other)
        let (sa, sb) = (shape, other.shape)
        return Tape.shared.record("sub", inputs: [self, other], output: out) { g in [g.sumTo(sa), g.neg().sumTo(sb)] }
    }

    /// `self * other` with broadcasting.
    func mul(_ other: Tensor) -> Tensor {
        let out = Tensor.binaryOp(.mul, self, other)
        let (a, b) = (self, other)
        return Tape.shared.record("mul", inputs: [self, other], output: out) { g in
            [a.requiresGrad ? Tensor.binaryOp(.mul, g, b).sumTo(a.shape) : nil,
             b.requiresGrad ? Tensor.binaryOp(.mul, g, a).sumTo(b.shape) : nil]
        }
    }

    /// `self / other` with broadcasting.
    func div(_ other: Tensor) -> Tensor {
        let out = Tensor.binaryOp(.div, self, other)
        let (a, b) = (self, other)
        return Tape.shared.record("div", inputs: [self, other], output: out) { g in
            let ga = Tensor.binaryOp(.div, g, b)
            // d(a/b)/db = -a/b^2 = -(out)/b
            let gb = b.requiresGrad ? Tensor.binaryOp(.mul, ga, out).neg().sumTo(b.shape) : nil
            return [a.requiresGrad ? ga.sumTo(a.shape) : nil, gb]
        }
    }

    private func scalarOp(_ op: ScalarOp, _ s: Float) -> Tensor {
        let out = Tensor(uninitialized: shape)
        backend.scalar(op, x: pointer, s: s, out: out.pointer, count: count)
        return out
    }

    /// `self + s`.
    func adding(_ s: Float) -> Tensor {
        Tape.shared.record("add_scalar", inputs: [self], output: scalarOp(.add, s)) { g in [g] }
    }

    /// `self * s`.
    func scaled(by s: Float) -> Tensor {
        Tape.shared.record("mul_scalar", inputs: [self], output: scalarOp(.mul, s)) { g in [g.scalarOp(.mul, s)] }
    }

    /// `s - self`.
    func reverseSub(_ s: Float) -> Tensor {
        Tape.shared.record("rsub_scalar", inputs: [self], output: scalarOp(.reverseSub, s)) { g in [g.scalarOp(.mul, -1)] }
    }

    /// `s / self`.
    func reverseDiv(_ s: Float) -> Tensor {
        let out = scalarOp(.reverseDiv, s)
        let x = self
        return Tape.shared.record("rdiv_scalar", inputs: [self], output: out) { g in
            // d(s/x)/dx = -s/x^2 = -out/x
            [Tensor.binaryOp(.mul, g, Tensor.binaryOp(.div, out, x)).scalarOp(.mul, -1)]
        }
    }

    /// `self ^ p` elementwise.
    func pow(_ p: Float) -> Tensor {
        let out = scalarOp(.pow, p)
        let x = self
        return Tape.shared.record("pow", inputs: [self], output: out) { g in
            let gi = Tensor(uninitialized: x.shape)
            x.backend.powBackward(x: x.pointer, p: p, gradOut: g.pointer, gradIn: gi.pointer, count: x.count)
            return [gi]
        }
    }

    /// Elementwise `max(self, s)` (gradient where `self > s`).
    func clampMin(_ s: Float) -> Tensor { adding(-s).relu().adding(s) }

    /// Applies a unary op and records its backward.
    func unary(_ op: UnaryOp) -> Tensor {
        let out = Tensor(uninitialized: shape)
        backend.unary(op, x: pointer, out: out.pointer, count: count)
        let x = self
        return Tape.shared.record(String(describing: op), inputs: [self], output: out) { g in
            let gi = Tensor(uninitialized: x.shape)
            x.backend.unaryBackward(op, x: x.pointer, y: out.pointer, gradOut: g.pointer, gradIn: gi.pointer, count: x.count)
            return [gi]
        }
    }

    func neg() -> Tensor { unary(.neg) }
    func exp() -> Tensor { unary(.exp) }
    func log() -> Tensor { unary(.log) }
    func sqrt() -> Tensor { unary(.sqrt) }
    func abs() -> Tensor { unary(.abs) }
    func relu() -> Tensor { unary(.relu) }
    /// Exact (erf) GELU, as PyTorch's default.
    func gelu() -> Tensor { unary(.gelu) }
    func sigmoid() -> Tensor { unary(.sigmoid) }
    func tanh() -> Tensor { unary(.tanh) }
    func square() -> Tensor { unary(.square) }

    /// `self += other` (same element count), not recorded; used for gradient accumulation.
    func addInPlace(_ other: Tensor, alpha: Float = 1) {
        precondition(other.count == count, "addInPlace: \(other.shape) into \(shape)")
        backend.axpy(alpha: alpha, x: other.pointer, y: pointer, count: count)
    }

    /// `self * s` in place, not recorded.
    func scaleInPlace(_ s: Float) { backend.scalar(ScalarOp.mul, x: UnsafePointer(pointer), s: s, out: pointer, count: count) }

    /// `self + other` into fresh memory, not recorded.
    func addingDetached(_ other: Tensor) -> Tensor {
        precondition(other.count == count, "addingDetached: \(other.shape) and \(shape)")
        // One pass (read both, write the sum) instead of a copy followed by an in-place add.
        let out = Tensor(uninitialized: shape)
        let strides = Tensor.contiguousStrides(shape)
        backend.binary(.add, a: pointer, aStrides: strides, b: other.pointer, bStrides: strides, out: out.pointer, shape: shape)
        return out
    }
}

public func + (a: Tensor, b: Tensor) -> Tensor { a.add(b) }
public func - (a: Tensor, b: Tensor) -> Tensor { a.sub(b) }
public func * (a: Tensor, b: Tensor) -> Tensor { a.mul(b) }
public func / (a: Tensor, b: Tensor) -> Tensor { a.div(b) }
public func + (a: Tensor, s: Float) -> Tensor { a.adding(s) }
public func - (a: Tensor, s: Float) -> Tensor { a.adding(-s) }
public func * (a: Tensor, s: Float) -> Tensor { a.scaled(by: s) }
public func * (s: Float, a: Tensor) -> Tensor { a.scaled(by: s) }
public func / (a: Tensor, s: Float) -> Tensor { a.scaled(by: 1 / s) }
public func - (s: Float, a: Tensor) -> Tensor { a.reverseSub(s) }
public prefix func - (a: Tensor) -> Tensor { a.neg() }
