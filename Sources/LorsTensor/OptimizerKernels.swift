import Foundation

/// Fused optimizer updates on raw device pointers, one call per parameter tensor.
///
/// Hyper-parameters arrive as `Double` and every derived scalar (`1 − lr·wd`, bias corrections,
/// step size) is computed in `Double` exactly as PyTorch computes it in Python, then rounded
/// once to `Float` for the elementwise math — the same rounding points as
/// `torch.optim.AdamW` / `torch.optim.SGD` (single-tensor path, the CPU default).
/// A CUDA backend conforms with one fused kernel per function.
public protocol OptimizerKernels {
    /// One AdamW step (`torch.optim.AdamW`, `amsgrad=False`, `maximize=False`) on `count` floats:
    ///
    ///     p   *= 1 − lr·wd                               (decoupled decay, skipped when wd == 0)
    ///     m    = lerp(m, g, 1 − β1)                      (m + (1 − β1)(g − m))
    ///     v    = β2·v + (1 − β2)·g·g
    ///     p   += −(lr / (1 − β1^step)) · m / (√v / √(1 − β2^step) + ε)
    ///
    /// `step` is this parameter's step count *after* incrementing (1 on its first update).
    func adamwStep(parameter: UnsafeMutablePointer<Float>, gradient: UnsafePointer<Float>,
                   expAvg: UnsafeMutablePointer<Float>, expAvgSq: UnsafeMutablePointer<Float>, count: Int,
                   learningRate: Double, beta1: Double, beta2: Double, epsilon: Double, weightDecay: Double, step: Int)

    /// One SGD step (`torch.optim.SGD`, `dampening=0`, `maximize=False`) on `count` floats:
    ///
    ///     d = g + wd·p                                   (skipped when wd == 0)
    ///     b = d                 if `initializeBuffer`    (first step: PyTorch clones d)
    ///     b = μ·b + d           otherwise                (only when `momentumBuffer` is non-nil)
    ///     d = d + μ·b  (nesterov)   or   d = b  (plain momentum)
    ///     p += −lr·d
    ///
    /// `momentumBuffer` must be nil exactly when `momentum == 0`. The gradient is not modified.
    func sgdStep(parameter: UnsafeMutablePointer<Float>, gradient: UnsafePointer<Float>,
                 momentumBuffer: UnsafeMutablePointer<Float>?, count: Int,
                 learningRate: Double, momentum: Double, weightDecay: Double, nesterov: Bool, initializeBuffer: Bool)
}

extension CPUBackend: OptimizerKernels {
    public func adamwStep(parameter p: UnsafeMutablePointer<Float>, gradient g: UnsafePointer<Float>,
                          expAvg m: UnsafeMutablePointer<Float>, expAvgSq v: UnsafeMutablePointer<Float>, count: Int,
                          learningRate: Double, beta1: Double, beta2: Double, epsilon: Double, weightDecay: Double, step: Int) {
        precondition(step >= 1, "adamwStep: step \(step) must be >= 1 (count after increment)")
        let decay = Float(1 - learningRate * weightDecay)
        let applyDecay = weightDecay != 0
        let weight1 = Float(1 - beta1)
        let smallWeight = abs(1 - beta1) < 0.5
        let beta2f = Float(beta2), weight2 = Float(1 - beta2)
        let biasCorrection1 = 1 - Foundation.pow(beta1, Double(step))
        let biasCorrection2 = 1 - Foundation.pow(beta2, Double(step))
        let negStepSize = Float(-(learningRate / biasCorrection1))
        let bc2Sqrt = Float(biasCorrection2.squareRoot())
        let eps = Float(epsilon)
        parallelFor(count, grain: 16_384) { s, e in
            for i in s..<e {
                var pi = p[i]
                if applyDecay { pi *= decay }
                let gi = g[i]
                // torch's lerp: self + w·(end − self) for |w| < 0.5, else end − (end − self)·(1 − w).
                let mi = smallWeight ? m[i] + weight1 * (gi - m[i]) : gi - (gi - m[i]) * (1 - weight1)
                let vi = v[i] * beta2f + weight2 * gi * gi
                m[i] = mi
                v[i] = vi
                let denom = vi.squareRoot() / bc2Sqrt + eps
                p[i] = pi + negStepSize * mi / denom
            }
        }
    }

    public func sgdStep(parameter p: UnsafeMutablePointer<Float>, gradient g: UnsafePointer<Float>,
                        momentumBuffer b: UnsafeMutablePointer<Float>?, count: Int,
                        learningRate: Double, momentum: Double, weightDecay: Double, nesterov: Bool, initializeBuffer: Bool) {
        precondition((b == nil) == (momentum == 0), "sgdStep: a momentum buffer is required exactly when momentum != 0")
        let negLR = Float(-learningRate), wd = Float(weightDecay), mu = Float(momentum)
        let applyDecay = weightDecay != 0
        parallelFor(count, grain: 16_384) { s, e in
            for i in s..<e {
                var d = g[i]
                if applyDecay { d = d + wd * p[i] }
                if let b {
                    let bi = initializeBuffer ? d : b[i] * mu + d
                    b[i] = bi
                    d = nesterov ? d + mu * bi : bi
                }
                p[i] = p[i] + negLR * d
            }
        }
    }
}

/// Optimizer updates on tensors (this tensor is the parameter), for the optimizers above the seam.
public extension Tensor {
    /// One AdamW step in place (`OptimizerKernels.adamwStep`); `gradient`, `expAvg`, `expAvgSq` have this count.
    func adamwStep(gradient: Tensor, expAvg: Tensor, expAvgSq: Tensor, learningRate: Double, beta1: Double, beta2: Double,
                   epsilon: Double, weightDecay: Double, step: Int) {
        precondition(gradient.count == count && expAvg.count == count && expAvgSq.count == count,
                     "adamwStep: parameter '\(name)' \(shape), gradient \(gradient.shape), state \(expAvg.shape) \(expAvgSq.shape)")
        guard count > 0 else { return }
        backend.adamwStep(parameter: pointer, gradient: gradient.pointer, expAvg: expAvg.pointer, expAvgSq: expAvgSq.pointer,
                          count: count, learningRate: learningRate, beta1: beta1, beta2: beta2, epsilon: epsilon,
                          weightDecay: weightDecay, step: step)
    }

    /// One SGD step in place (`OptimizerKernels.sgdStep`); `momentumBuffer` is nil exactly when `momentum == 0`.
    func sgdStep(gradient: Tensor, momentumBuffer: Tensor?, learningRate: Double, momentum: Double, weightDecay: Double,
                 nesterov: Bool, initializeBuffer: Bool) {
        precondition(gradient.count == count && (momentumBuffer?.count ?? count) == count,
                     "sgdStep: parameter '\(name)' \(shape), gradient \(gradient.shape), momentum buffer \(momentumBuffer?.shape ?? [])")
        guard count > 0 else { return }
        backend.sgdStep(parameter: pointer, gradient: gradient.pointer, momentumBuffer: momentumBuffer?.pointer, count: count,
                        learningRate: learningRate, momentum: momentum, weightDecay: weightDecay, nesterov: nesterov,
                        initializeBuffer: initializeBuffer)
    }
}
