import LorsTensor

/// Clips gradients by their global L2 norm, as `torch.nn.utils.clip_grad_norm_` (norm type 2).
///
/// The norm is taken over every *distinct* tensor in `parameters` that has a gradient (a shared
/// weight listed several times counts once), in list order, each tensor's sum of squares
/// accumulated in `Double` by `sumOfSquares` and summed in that fixed order, so the result does
/// not depend on thread counts. With `scale = maxNorm / (norm + 1e-6)`, every gradient is
/// multiplied by `scale` when `scale < 1`. As in PyTorch (`error_if_nonfinite=False`), a
/// non-finite norm still scales (the gradients become NaN): check the returned norm to skip
/// such a step.
///
/// - Returns: the total norm before clipping.
@discardableResult
public func clipGradientNorm(parameters: [Tensor], maxNorm: Double) -> Double {
    var seen = Set<ObjectIdentifier>()
    var gradients: [Tensor] = []
    for p in parameters where seen.insert(ObjectIdentifier(p)).inserted {
        if let g = p.grad { gradients.append(g) }
    }
    var sum = 0.0
    for g in gradients { sum += g.sumOfSquares() }
    let norm = sum.squareRoot()
    let scale = maxNorm / (norm + 1e-6)
    if !(scale >= 1) {
        let s = Float(scale)
        for g in gradients { g.scaleInPlace(s) }
    }
    return norm
}
