import Foundation

/// Fused loss kernels producing unreduced (per-sample or per-element) losses; reductions are
/// ordinary tensor ops on top. Backward kernels take the gradient of the unreduced loss.
public protocol LossKernels {
    /// Cross-entropy of `logits` `[rows, classes]` against a target distribution `q` (per row):
    /// `loss[r] = −Σ_c q[r, c] · logp[r, c]` with `logp = x − logsumexp(x)`, where
    /// `q = (1 − ε) · onehot(targets[r]) + ε / classes` for class-index `targets`, or
    /// `q = (1 − ε) · softTargets[r] + ε / classes` for `softTargets` (exactly one of the two is non-nil;
    /// ε = `labelSmoothing`). Writes `loss` and `logSumExp` (`[rows]`).
    func crossEntropy(logits: UnsafePointer<Float>, rows: Int, classes: Int, targets: UnsafePointer<Int32>?,
                      softTargets: UnsafePointer<Float>?, labelSmoothing: Float, loss: UnsafeMutablePointer<Float>,
                      logSumExp: UnsafeMutablePointer<Float>)
    /// Backward of `crossEntropy` with respect to the logits:
    /// `gradLogits[r, c] = gradLoss[r] · (softmax[r, c] · Σ_k q[r, k] − q[r, c])` (Σq = 1 for index targets).
    func crossEntropyBackward(logits: UnsafePointer<Float>, logSumExp: UnsafePointer<Float>, rows: Int, classes: Int,
                              targets: UnsafePointer<Int32>?, softTargets: UnsafePointer<Float>?, labelSmoothing: Float,
                              gradLoss: UnsafePointer<Float>, gradLogits: UnsafeMutablePointer<Float>)
    /// Sigmoid focal loss per element (torchvision / mmdet): with `p = σ(x)`,
    /// `ce = max(x, 0) − x·t + log(1 + e^{−|x|})`, `p_t = p·t + (1 − p)(1 − t)`,
    /// `loss = α_t · ce · (1 − p_t)^γ`, `α_t = α·t + (1 − α)(1 − t)` (α_t = 1 when `alpha < 0`).
    func sigmoidFocalLoss(logits: UnsafePointer<Float>, targets: UnsafePointer<Float>, count: Int, alpha: Float, gamma: Float,
                          loss: UnsafeMutablePointer<Float>)
    /// Backward of `sigmoidFocalLoss` with respect to the logits:
    /// `gradLogits = gradLoss · α_t · [(p − t)(1 − p_t)^γ − γ · ce · (1 − p_t)^{γ−1} · (2t − 1) · p(1 − p)]`.
    func sigmoidFocalLossBackward(logits: UnsafePointer<Float>, targets: UnsafePointer<Float>, count: Int, alpha: Float,
                                  gamma: Float, gradLoss: UnsafePointer<Float>, gradLogits: UnsafeMutablePointer<Float>)
    /// `loss = |prediction − target|` per element.
    func l1Loss(prediction: UnsafePointer<Float>, target: UnsafePointer<Float>, count: Int, loss: UnsafeMutablePointer<Float>)
    /// Backward of `l1Loss`: `gradPrediction = gradLoss · sign(prediction − target)` (0 at equality, as PyTorch)
    /// and, when non-nil, `gradTarget = −gradPrediction`.
    func l1LossBackward(prediction: UnsafePointer<Float>, target: UnsafePointer<Float>, count: Int, gradLoss: UnsafePointer<Float>,
                        gradPrediction: UnsafeMutablePointer<Float>?, gradTarget: UnsafeMutablePointer<Float>?)
    /// Generalised-IoU loss per aligned box pair (mmdetection `giou_loss` / `bbox_overlaps(mode: 'giou',
    /// is_aligned: true)`): boxes are xyxy rows of 4 (`count` pairs); `area = (x2 − x1)(y2 − y1)` unclamped,
    /// `overlap = max(min(x2) − max(x1), 0) · max(min(y2) − max(y1), 0)`, `union = max(area_p + area_t − overlap, eps)`,
    /// `enclose = max(max(max(x2) − min(x1), 0) · max(max(y2) − min(y1), 0), eps)`,
    /// `loss = 1 − (overlap / union − (enclose − union) / enclose)`.
    func giouLoss(predicted: UnsafePointer<Float>, target: UnsafePointer<Float>, count: Int, eps: Float,
                  loss: UnsafeMutablePointer<Float>)
    /// Backward of `giouLoss` (analytic) for the predicted and, when non-nil, the target boxes. Subgradients as
    /// PyTorch's autograd of the forward's formula: a clamp at 0 passes the gradient where its argument is ≥ 0, a
    /// max/min of two coordinates gives each its share (half each on a tie), `max(·, eps)` passes it where the
    /// argument is > eps (half at equality).
    func giouLossBackward(predicted: UnsafePointer<Float>, target: UnsafePointer<Float>, count: Int, eps: Float,
                          gradLoss: UnsafePointer<Float>, gradPredicted: UnsafeMutablePointer<Float>?,
                          gradTarget: UnsafeMutablePointer<Float>?)
}

extension CPUBackend: LossKernels {
    public func crossEntropy(logits: UnsafePointer<Float>, rows: Int, classes: Int, targets: UnsafePointer<Int32>?,
                             softTargets: UnsafePointer<Float>?, labelSmoothing eps: Float, loss: UnsafeMutablePointer<Float>,
                             logSumExp: UnsafeMutablePointer<Float>) {
        let uniform = eps / Float(classes)
        parallelRows(rows, rowCost: classes * 4) { s, e in
            for r in s..<e {
                let xr = logits + r * classes
                var m = -Float.infinity
                for c in 0..<classes { m = Swift.max(m, xr[c]) }
                if m == -.infinity { m = 0 }
                var sum: Float = 0, sumX: Float = 0
                for c in 0..<classes { sum += expf(xr[c] - m); sumX += xr[c] }
                let lse = logf(sum) + m
                logSumExp[r] = lse
                if let targets {
                    // (1 − ε)(lse − x_t) + ε · (lse − mean x)
                    let t = Int(targets[r])
                    loss[r] = (1 - eps) * (lse - xr[t]) + (eps == 0 ? 0 : eps * (lse - sumX / Float(classes)))
                } else if let soft = softTargets {
                    let tr = soft + r * classes
                    var acc: Float = 0
                    for c in 0..<classes { acc += ((1 - eps) * tr[c] + uniform) * (lse - xr[c]) }
                    loss[r] = acc
                }
            }
        }
    }

    public func crossEntropyBackward(logits: UnsafePointer<Float>, logSumExp: UnsafePointer<Float>, rows: Int, classes: Int,
                                     targets: UnsafePointer<Int32>?, softTargets: UnsafePointer<Float>?, labelSmoothing eps: Float,
                                     gradLoss: UnsafePointer<Float>, gradLogits: UnsafeMutablePointer<Float>) {
        let uniform = eps / Float(classes)
        parallelRows(rows, rowCost: classes * 3) { s, e in
            for r in s..<e {
                let xr = logits + r * classes, gx = gradLogits + r * classes
                let lse = logSumExp[r], g = gradLoss[r]
                if let targets {
                    for c in 0..<classes { gx[c] = g * (expf(xr[c] - lse) - uniform) }
                    gx[Int(targets[r])] -= g * (1 - eps)
                } else if let soft = softTargets {
                    let tr = soft + r * classes
                    var total: Float = 0
                    for c in 0..<classes { total += (1 - eps) * tr[c] + uniform }
                    for c in 0..<classes { gx[c] = g * (expf(xr[c] - lse) * total - ((1 - eps) * tr[c] + uniform)) }
                }
            }
        }
    }

    public func sigmoidFocalLoss(logits: UnsafePointer<Float>, targets: UnsafePointer<Float>, count: Int, alpha: Float, gamma: Float,
                                 loss: UnsafeMutablePointer<Float>) {
        parallelFor(count, grain: 8192) { s, e in
            for i in s..<e {
                let x = logits[i], t = targets[i]
                let p = 1 / (1 + expf(-x))
                let ce = Swift.max(x, 0) - x * t + log1pf(expf(-Swift.abs(x)))
                let oneMinusPt = 1 - (p * t + (1 - p) * (1 - t))
                let at: Float = alpha >= 0 ? alpha * t + (1 - alpha) * (1 - t) : 1
                loss[i] = at * ce * focalPow(oneMinusPt, gamma)
            }
        }
    }

    public func sigmoidFocalLossBackward(logits: UnsafePointer<Float>, targets: UnsafePointer<Float>, count: Int, alpha: Float,
                                         gamma: Float, gradLoss: UnsafePointer<Float>, gradLogits: UnsafeMutablePointer<Float>) {
        parallelFor(count, grain: 8192) { s, e in
            for i in s..<e {
                let x = logits[i], t = targets[i]
                let p = 1 / (1 + expf(-x))
                let ce = Swift.max(x, 0) - x * t + log1pf(expf(-Swift.abs(x)))
                let oneMinusPt = 1 - (p * t + (1 - p) * (1 - t))
                let at: Float = alpha >= 0 ? alpha * t + (1 - alpha) * (1 - t) : 1
                // d(1 − p_t)/dx = −(2t − 1) p (1 − p); the (1 − p_t)^{γ−1} term vanishes with γ = 0.
                let modulatorGrad: Float = gamma == 0 ? 0 : gamma * focalPow(oneMinusPt, gamma - 1) * (-(2 * t - 1) * p * (1 - p))
                gradLogits[i] = gradLoss[i] * at * ((p - t) * focalPow(oneMinusPt, gamma) + ce * modulatorGrad)
            }
        }
    }

    public func l1Loss(prediction: UnsafePointer<Float>, target: UnsafePointer<Float>, count: Int, loss: UnsafeMutablePointer<Float>) {
        parallelFor(count) { s, e in
            for i in s..<e { loss[i] = Swift.abs(prediction[i] - target[i]) }
        }
    }

    public func l1LossBackward(prediction: UnsafePointer<Float>, target: UnsafePointer<Float>, count: Int, gradLoss: UnsafePointer<Float>,
                               gradPrediction: UnsafeMutablePointer<Float>?, gradTarget: UnsafeMutablePointer<Float>?) {
        parallelFor(count) { s, e in
            for i in s..<e {
                let d = prediction[i] - target[i]
                let g: Float = d > 0 ? gradLoss[i] : (d < 0 ? -gradLoss[i] : 0)
                gradPrediction?[i] = g
                gradTarget?[i] = -g
            }
        }
    }

    public func giouLoss(predicted: UnsafePointer<Float>, target: UnsafePointer<Float>, count: Int, eps: Float,
                         loss: UnsafeMutablePointer<Float>) {
        parallelFor(count, grain: 4096) { s, e in
            for i in s..<e { loss[i] = GIoUPair(predicted + 4 * i, target + 4 * i, eps: eps).loss }
        }
    }

    public func giouLossBackward(predicted: UnsafePointer<Float>, target: UnsafePointer<Float>, count: Int, eps: Float,
                                 gradLoss: UnsafePointer<Float>, gradPredicted: UnsafeMutablePointer<Float>?,
                                 gradTarget: UnsafeMutablePointer<Float>?) {
        parallelFor(count, grain: 2048) { s, e in
            for i in s..<e {
                let p = predicted + 4 * i, t = target + 4 * i
                let pair = GIoUPair(p, t, eps: eps)
                if let gradPredicted { pair.gradient(gradLoss[i], own: p, other: t, into: gradPredicted + 4 * i) }
                if let gradTarget { pair.gradient(gradLoss[i], own: t, other: p, into: gradTarget + 4 * i) }
            }
        }
    }
}

/// The forward quantities of one aligned GIoU pair, in mmdetection's order of operations; the formula is symmetric
/// in the two boxes, so `gradient(own:other:)` serves both.
struct GIoUPair {
    var overlap: Float, union: Float, unionRaw: Float, enclose: Float, encloseRaw: Float
    var interW: Float, interH: Float, interWRaw: Float, interHRaw: Float
    var encW: Float, encH: Float, encWRaw: Float, encHRaw: Float
    var eps: Float, loss: Float

    @inline(__always) init(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, eps: Float) {
        let areaA = (a[2] - a[0]) * (a[3] - a[1]), areaB = (b[2] - b[0]) * (b[3] - b[1])
        interWRaw = Swift.min(a[2], b[2]) - Swift.max(a[0], b[0])
        interHRaw = Swift.min(a[3], b[3]) - Swift.max(a[1], b[1])
        interW = Swift.max(interWRaw, 0); interH = Swift.max(interHRaw, 0)
        overlap = interW * interH
        unionRaw = areaA + areaB - overlap
        union = Swift.max(unionRaw, eps)
        encWRaw = Swift.max(a[2], b[2]) - Swift.min(a[0], b[0])
        encHRaw = Swift.max(a[3], b[3]) - Swift.min(a[1], b[1])
        encW = Swift.max(encWRaw, 0); encH = Swift.max(encHRaw, 0)
        encloseRaw = encW * encH
        enclose = Swift.max(encloseRaw, eps)
        let iou = overlap / union
        loss = 1 - (iou - (enclose - union) / enclose)
        self.eps = eps
    }

    /// Gradient of `g · loss` with respect to the box `own` (the other box of the pair is `other`), written to `out[0..<4]`.
    @inline(__always) func gradient(_ g: Float, own a: UnsafePointer<Float>, other b: UnsafePointer<Float>,
                                    into out: UnsafeMutablePointer<Float>) {
        let gG = -g                                      // ∂loss/∂giou = −1
        // giou = overlap / union − (enclose − union) / enclose = overlap / union − 1 + union / enclose
        let gUnion = gG * (1 / enclose - overlap / (union * union))
        var gOverlap = gG / union
        let gEnclose = -gG * (union / (enclose * enclose))
        let gUnionRaw = gUnion * maxShare(unionRaw, eps)
        gOverlap -= gUnionRaw                            // union = area_a + area_b − overlap
        let gEncRaw = gEnclose * maxShare(encloseRaw, eps)
        let gEncW = encWRaw >= 0 ? gEncRaw * encH : 0, gEncH = encHRaw >= 0 ? gEncRaw * encW : 0
        let gInterW = interWRaw >= 0 ? gOverlap * interH : 0, gInterH = interHRaw >= 0 ? gOverlap * interW : 0
        let w = a[2] - a[0], h = a[3] - a[1]
        // area_a = (x2 − x1)(y2 − y1); inter = min(x2) − max(x1); enclosing = max(x2) − min(x1).
        out[0] = -gUnionRaw * h - gInterW * maxShare(a[0], b[0]) - gEncW * maxShare(b[0], a[0])
        out[1] = -gUnionRaw * w - gInterH * maxShare(a[1], b[1]) - gEncH * maxShare(b[1], a[1])
        out[2] = gUnionRaw * h + gInterW * maxShare(b[2], a[2]) + gEncW * maxShare(a[2], b[2])
        out[3] = gUnionRaw * w + gInterH * maxShare(b[3], a[3]) + gEncH * maxShare(a[3], b[3])
    }
}

/// The share of `max(x, y)`'s gradient that goes to `x` (PyTorch's `maximum`: 1, ½ on a tie, 0); `maxShare(y, x)` is
/// also the share of `min(x, y)`'s gradient that goes to `x`.
@inline(__always) private func maxShare(_ x: Float, _ y: Float) -> Float { x > y ? 1 : (x == y ? 0.5 : 0) }

/// `base^exponent` for the focal modulating factor: exact for the common γ = 2 and γ = 1, and 0
/// for a non-positive base with a positive exponent (base is 1 − p_t ∈ [0, 1]; rounding can give −0).
@inline(__always) func focalPow(_ base: Float, _ exponent: Float) -> Float {
    if exponent == 0 { return 1 }
    if base <= 0 { return 0 }
    if exponent == 2 { return base * base }
    if exponent == 1 { return base }
    return powf(base, exponent)
}
