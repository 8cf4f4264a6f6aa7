/// Layer norm and group norm (fused kernels in NormKernels.swift); each backward beside its forward.
public extension Tensor {
    /// Layer normalisation over the last `lastDims` dimensions jointly (PyTorch `F.layer_norm` with
    /// `normalized_shape = shape.suffix(lastDims)`):
    /// `y = (x − mean) / sqrt(var + eps) · weight + bias`, mean and biased variance over those dimensions.
    ///
    /// `self` is `[..., *normalized]`; `weight` and `bias` (each optional) have shape `normalized`
    /// (`shape.suffix(lastDims)`); the result has `self`'s shape. AdaMixer's LayerNorm over `(P, C)` without
    /// affine is `x.layerNorm(lastDims: 2, weight: nil, bias: nil)`.
    func layerNorm(lastDims: Int = 1, weight: Tensor?, bias: Tensor?, eps: Float = 1e-5) -> Tensor {
        precondition(lastDims >= 1 && lastDims <= rank, "layerNorm over the last \(lastDims) dimensions of \(shape)")
        let normalized = Array(shape.suffix(lastDims))
        for (label, p) in [("weight", weight), ("bias", bias)] {
            if let p { precondition(p.shape == normalized, "layerNorm \(label) \(p.shape) does not match normalised shape \(normalized) of \(shape)") }
        }
        let n = normalized.reduce(1, *), rows = n == 0 ? 0 : count / n
        precondition(n > 0, "layerNorm over an empty normalised shape \(normalized)")
        let out = Tensor(uninitialized: shape)
        let mean = Tensor(uninitialized: [rows]), rstd = Tensor(uninitialized: [rows])
        backend.layerNorm(x: pointer, weight: weight.map { UnsafePointer($0.pointer) }, bias: bias.map { UnsafePointer($0.pointer) },
                          rows: rows, n: n, eps: eps, out: out.pointer, mean: mean.pointer, rstd: rstd.pointer)
        let x = self
        var inputs = [self]
        if let weight { inputs.append(weight) }
        if let bias { inputs.append(bias) }
        return Tape.shared.record("layer_norm", inputs: inputs, output: out) { g in
            let gx = Tensor(uninitialized: x.shape)
            let gw = weight.map { Tensor(uninitialized: $0.shape) }, gb = bias.map { Tensor(uninitialized: $0.shape) }
            x.backend.layerNormBackward(x: x.pointer, weight: weight.map { UnsafePointer($0.pointer) }, mean: mean.pointer,
                                        rstd: rstd.pointer, gradOut: g.pointer, rows: rows, n: n, gradIn: gx.pointer,
                                        gradWeight: gw?.pointer, gradBias: gb?.pointer)
            var grads: [Tensor?] = [gx]
            if weight != nil { grads.append(gw) }
            if bias != nil { grads.append(gb) }
            return grads
        }
    }

    /// Group normalisation (PyTorch `F.group_norm`): `self` is `[N, C, *spatial]`; channels are split into
    /// `groups` groups of `C / groups` consecutive channels, each (sample, group) is normalised over its
    /// `(C / groups) · Π spatial` elements (biased variance), then `y[n, c, ...] = xhat · weight[c] + bias[c]`.
    ///
    /// `weight` and `bias` are optional `[C]`; the result has `self`'s shape.
    func groupNorm(groups: Int, weight: Tensor?, bias: Tensor?, eps: Float = 1e-5) -> Tensor {
        precondition(rank >= 2, "groupNorm needs [N, C, *spatial], got \(shape)")
        let batch = shape[0], channels = shape[1], spatial = shape[2...].reduce(1, *)
        precondition(groups > 0 && channels % groups == 0, "groupNorm: \(channels) channels not divisible into \(groups) groups")
        for (label, p) in [("weight", weight), ("bias", bias)] {
            if let p { precondition(p.shape == [channels], "groupNorm \(label) \(p.shape) does not match \(channels) channels of \(shape)") }
        }
        let out = Tensor(uninitialized: shape)
        let mean = Tensor(uninitialized: [batch, groups]), rstd = Tensor(uninitialized: [batch, groups])
        backend.groupNorm(x: pointer, weight: weight.map { UnsafePointer($0.pointer) }, bias: bias.map { UnsafePointer($0.pointer) },
                          batch: batch, channels: channels, spatial: spatial, groups: groups, eps: eps, out: out.pointer,
                          mean: mean.pointer, rstd: rstd.pointer)
        let x = self
        var inputs = [self]
        if let weight { inputs.append(weight) }
        if let bias { inputs.append(bias) }
        return Tape.shared.record("group_norm", inputs: inputs, output: out) { g in
            let gx = Tensor(uninitialized: x.shape)
            let gw = weight.map { Tensor(uninitialized: $0.shape) }, gb = bias.map { Tensor(uninitialized: $0.shape) }
            x.backend.groupNormBackward(x: x.pointer, weight: weight.map { UnsafePointer($0.pointer) }, mean: mean.pointer,
                                        rstd: rstd.pointer, gradOut: g.pointer, batch: batch, channels: channels, spatial: spatial,
                                        groups: groups, gradIn: gx.pointer, gradWeight: gw?.pointer, gradBias: gb?.pointer)
            var grads: [Tensor?] = [gx]
            if weight != nil { grads.append(gw) }
            if bias != nil { grads.append(gb) }
            return grads
        }
    }
}
