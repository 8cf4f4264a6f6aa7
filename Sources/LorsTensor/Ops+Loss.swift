/// Losses (fused kernels in LossKernels.swift): cross-entropy with label smoothing or soft targets,
/// sigmoid focal loss, L1 and GIoU. Each backward sits beside its forward.

/// How a loss reduces its unreduced (per-sample or per-element) values.
public enum LossReduction: Sendable, Equatable {
    /// No reduction: per-sample losses `[B]` (cross-entropy) or per-element losses (same shape as the input).
    case none
    /// Sum of the unreduced losses (0-d).
    case sum
    /// Mean of the unreduced losses (0-d): over samples for cross-entropy, over elements otherwise (PyTorch).
    case mean
    /// Sum divided by a fixed denominator (0-d): the trainer's sum of per-sample losses over the GLOBAL batch
    /// size, or a detection loss over the global number of positives, so ranks do not change the numerics.
    case sumDividedBy(Float)
}

extension Tensor {
    /// Applies `reduction` to an unreduced loss (recorded ops, so gradients flow through).
    func reduced(_ reduction: LossReduction) -> Tensor {
        switch reduction {
        case .none: return self
        case .sum: return sum()
        case .mean: return sum().scaled(by: 1 / Float(Swift.max(count, 1)))
        case .sumDividedBy(let d):
            precondition(d > 0, "loss reduction: sumDividedBy(\(d)) needs a positive denominator")
            return sum().scaled(by: 1 / d)
        }
    }
}

public extension Tensor {
    /// Cross-entropy of `logits` `[B, C]` with class-index `targets` (`B` values in `0..<C`), fused
    /// log-softmax + NLL, with label smoothing exactly as PyTorch `F.cross_entropy(logits, targets,
    /// label_smoothing: ε)`: `loss[b] = (1 − ε)(lse_b − x[b, t_b]) + ε · (lse_b − mean_c x[b, c])`,
    /// i.e. the cross-entropy against `q = (1 − ε) onehot + ε / C`.
    ///
    /// Returns `[B]` for `.none`, else 0-d (`.mean` divides by `B`). Gradient w.r.t. the logits:
    /// `softmax − q` per row, times the per-sample upstream gradient.
    static func crossEntropy(_ logits: Tensor, targets: [Int32], labelSmoothing: Float = 0,
                             reduction: LossReduction = .mean) -> Tensor {
        precondition(logits.rank == 2, "crossEntropy logits must be [B, C], got \(logits.shape)")
        let rows = logits.shape[0], classes = logits.shape[1]
        precondition(targets.count == rows, "crossEntropy: \(targets.count) targets for \(rows) rows of logits \(logits.shape)")
        precondition(labelSmoothing >= 0 && labelSmoothing <= 1, "crossEntropy label smoothing \(labelSmoothing) not in [0, 1]")
        for (b, t) in targets.enumerated() {
            precondition(t >= 0 && Int(t) < classes, "crossEntropy: target \(t) of row \(b) out of range 0..<\(classes)")
        }
        let loss = Tensor(uninitialized: [rows]), lse = Tensor(uninitialized: [rows])
        targets.withUnsafeBufferPointer {
            logits.backend.crossEntropy(logits: logits.pointer, rows: rows, classes: classes, targets: $0.baseAddress, softTargets: nil,
                                        labelSmoothing: labelSmoothing, loss: loss.pointer, logSumExp: lse.pointer)
        }
        return Tape.shared.record("cross_entropy", inputs: [logits], output: loss) { g in
            let gx = Tensor(uninitialized: logits.shape)
            targets.withUnsafeBufferPointer {
                logits.backend.crossEntropyBackward(logits: logits.pointer, logSumExp: lse.pointer, rows: rows, classes: classes,
                                                    targets: $0.baseAddress, softTargets: nil, labelSmoothing: labelSmoothing,
                                                    gradLoss: g.pointer, gradLogits: gx.pointer)
            }
            return [gx]
        }.reduced(reduction)
    }

    /// Cross-entropy of `logits` `[B, C]` with a target distribution `softTargets` `[B, C]` (Mixup/CutMix),
    /// as PyTorch `F.cross_entropy(logits, probs, label_smoothing: ε)`:
    /// `loss[b] = −Σ_c q[b, c] · log_softmax(x)[b, c]` with `q = (1 − ε) · softTargets + ε / C`.
    ///
    /// Returns `[B]` for `.none`, else 0-d (`.mean` divides by `B`). Gradients: logits `softmax · Σq − q`,
    /// soft targets (if they require gradients) `−(1 − ε) · log_softmax(x)`, each times the per-sample upstream gradient.
    static func crossEntropy(_ logits: Tensor, softTargets: Tensor, labelSmoothing: Float = 0,
                             reduction: LossReduction = .mean) -> Tensor {
        precondition(logits.rank == 2, "crossEntropy logits must be [B, C], got \(logits.shape)")
        precondition(softTargets.shape == logits.shape, "crossEntropy soft targets \(softTargets.shape) vs logits \(logits.shape)")
        precondition(labelSmoothing >= 0 && labelSmoothing <= 1, "crossEntropy label smoothing \(labelSmoothing) not in [0, 1]")
        let rows = logits.shape[0], classes = logits.shape[1]
        let loss = Tensor(uninitialized: [rows]), lse = Tensor(uninitialized: [rows])
        logits.backend.crossEntropy(logits: logits.pointer, rows: rows, classes: classes, targets: nil, softTargets: softTargets.pointer,
                                    labelSmoothing: labelSmoothing, loss: loss.pointer, logSumExp: lse.pointer)
        return Tape.shared.record("cross_entropy_soft", inputs: [logits, softTargets], output: loss) { g in
            var gx: Tensor?
            if logits.requiresGrad {
                let t = Tensor(uninitialized: logits.shape)
                logits.backend.crossEntropyBackward(logits: logits.pointer, logSumExp: lse.pointer, rows: rows, classes: classes,
                                                    targets: nil, softTargets: softTargets.pointer, labelSmoothing: labelSmoothing,
                                                    gradLoss: g.pointer, gradLogits: t.pointer)
                gx = t
            }
            // ∂loss_b/∂t[b, c] = −(1 − ε) · logp[b, c] (recording is off here).
            let gt = softTargets.requiresGrad
                ? logits.detached().logSoftmax(axis: -1).mul(g.detached().reshaped([rows, 1])).scaled(by: -(1 - labelSmoothing))
                : nil
            return [gx, gt]
        }.reduced(reduction)
    }

    /// Sigmoid focal loss (torchvision `ops.sigmoid_focal_loss`, mmdet `sigmoid_focal_loss`) of `logits`
    /// against `targets` of the same shape (0/1 floats), fused:
    /// `p = σ(x)`, `ce = BCEWithLogits(x, t)`, `p_t = p·t + (1 − p)(1 − t)`,
    /// `loss = α_t · ce · (1 − p_t)^γ` with `α_t = α·t + (1 − α)(1 − t)`; a negative `alpha` disables the α weighting.
    ///
    /// Returns the per-element loss (same shape) for `.none`, else 0-d (`.mean` over all elements, as torchvision).
    /// Targets are constants (they receive no gradient).
    static func sigmoidFocalLoss(_ logits: Tensor, targets: Tensor, alpha: Float = 0.25, gamma: Float = 2,
                                 reduction: LossReduction = .none) -> Tensor {
        precondition(targets.shape == logits.shape, "sigmoidFocalLoss targets \(targets.shape) vs logits \(logits.shape)")
        precondition(gamma >= 0, "sigmoidFocalLoss gamma \(gamma) must be ≥ 0")
        let loss = Tensor(uninitialized: logits.shape)
        logits.backend.sigmoidFocalLoss(logits: logits.pointer, targets: targets.pointer, count: logits.count, alpha: alpha, gamma: gamma,
                                        loss: loss.pointer)
        return Tape.shared.record("sigmoid_focal_loss", inputs: [logits], output: loss) { g in
            let gx = Tensor(uninitialized: logits.shape)
            logits.backend.sigmoidFocalLossBackward(logits: logits.pointer, targets: targets.pointer, count: logits.count, alpha: alpha,
                                                    gamma: gamma, gradLoss: g.pointer, gradLogits: gx.pointer)
            return [gx]
        }.reduced(reduction)
    }

    /// L1 loss `|prediction − target|` (PyTorch `F.l1_loss`), same shapes.
    ///
    /// Returns the per-element loss for `.none`, else 0-d (`.mean` over all elements). Gradients:
    /// `sign(prediction − target)` for the prediction (0 at equality, as PyTorch) and its negative for the target.
    static func l1Loss(_ prediction: Tensor, _ target: Tensor, reduction: LossReduction = .mean) -> Tensor {
        precondition(prediction.shape == target.shape, "l1Loss prediction \(prediction.shape) vs target \(target.shape)")
        let loss = Tensor(uninitialized: prediction.shape)
        prediction.backend.l1Loss(prediction: prediction.pointer, target: target.pointer, count: prediction.count, loss: loss.pointer)
        return Tape.shared.record("l1_loss", inputs: [prediction, target], output: loss) { g in
            let gp = prediction.requiresGrad ? Tensor(uninitialized: prediction.shape) : nil
            let gt = target.requiresGrad ? Tensor(uninitialized: target.shape) : nil
            prediction.backend.l1LossBackward(prediction: prediction.pointer, target: target.pointer, count: prediction.count,
                                              gradLoss: g.pointer, gradPrediction: gp?.pointer, gradTarget: gt?.pointer)
            return [gp, gt]
        }.reduced(reduction)
    }

    /// Generalised-IoU loss of aligned box pairs (mmdetection `giou_loss(pred, target, eps)`): `predicted` and
    /// `target` are `[N, 4]` xyxy boxes, the per-box loss is `1 − GIoU` with the union and the enclosing area clamped
    /// below at `eps` (`bbox_overlaps(mode: 'giou', is_aligned: true, eps)`). Predicted boxes are not clamped: a box
    /// with x2 < x1 or zero width gets a finite loss and gradient (its negative area shrinks the union, which stops at
    /// `eps`).
    ///
    /// Returns `[N]` for `.none`, else 0-d (`.mean` over boxes). Gradients (analytic, fused): both boxes, with
    /// PyTorch autograd's subgradients at the kinks (see `LossKernels.giouLossBackward`).
    static func giouLoss(predicted: Tensor, target: Tensor, eps: Float = 1e-6, reduction: LossReduction = .none) -> Tensor {
        precondition(predicted.rank == 2 && predicted.shape[1] == 4, "giouLoss predicted boxes must be [N, 4], got \(predicted.shape)")
        precondition(target.shape == predicted.shape, "giouLoss target \(target.shape) vs predicted \(predicted.shape)")
        precondition(eps > 0, "giouLoss eps \(eps) must be > 0")
        let n = predicted.shape[0]
        let loss = Tensor(uninitialized: [n])
        predicted.backend.giouLoss(predicted: predicted.pointer, target: target.pointer, count: n, eps: eps, loss: loss.pointer)
        return Tape.shared.record("giou_loss", inputs: [predicted, target], output: loss) { g in
            let gp = predicted.requiresGrad ? Tensor(uninitialized: predicted.shape) : nil
            let gt = target.requiresGrad ? Tensor(uninitialized: target.shape) : nil
            predicted.backend.giouLossBackward(predicted: predicted.pointer, target: target.pointer, count: n, eps: eps,
                                               gradLoss: g.pointer, gradPredicted: gp?.pointer, gradTarget: gt?.pointer)
            return [gp, gt]
        }.reduced(reduction)
    }
}
