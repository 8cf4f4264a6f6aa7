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
}

/// `base^exponent` for the focal modulating factor: exact for the common γ = 2 and γ = 1, and 0
/// for a non-positive base with a positive exponent (base is 1 − p_t ∈ [0, 1]; rounding can give −0).
@inline(__always) func focalPow(_ base: Float, _ exponent: Float) -> Float {
    if exponent == 0 { return 1 }
    if base <= 0 { return 0 }
    if exponent == 2 { return base * base }
    if exponent == 1 { return base }
    return powf(base, exponent)
}
