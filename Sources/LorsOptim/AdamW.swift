import LorsTensor

/// AdamW with PyTorch's `torch.optim.AdamW` semantics (`amsgrad=False`): decoupled decay
/// `p −= lr·wd·p` first, then the Adam update with bias corrections from the parameter's own
/// step count (see `OptimizerKernels.adamwStep`). State per parameter: `exp_avg`,
/// `exp_avg_sq` (parameter shape) and `step` (0-d).
public final class AdamW: Optimizer {
    /// Per-parameter state.
    final class State {
        let expAvg: Tensor
        let expAvgSq: Tensor
        var step: Int
        init(expAvg: Tensor, expAvgSq: Tensor, step: Int) {
            self.expAvg = expAvg
            self.expAvgSq = expAvgSq
            self.step = step
        }
    }

    private let registry: ParameterRegistry
    private var states: [ObjectIdentifier: State] = [:]

    public var groups: [ParameterGroup] { registry.groups }
    public var parameters: [Tensor] { registry.parameters }
    public let baseLearningRate: Double
    public private(set) var stepCount = 0
    /// β1 (exp_avg decay).
    public let beta1: Double
    /// β2 (exp_avg_sq decay).
    public let beta2: Double
    /// ε added to the bias-corrected root of exp_avg_sq.
    public let epsilon: Double
    /// Weight decay of groups that do not set their own.
    public let weightDecay: Double

    /// - Parameters:
    ///   - groups: parameter groups (a tensor in several places is updated once, in its first group).
    ///   - learningRate: the base rate (`optimizer.lr`), used by `step()` and `.absolute` groups.
    ///   - weightDecay: default decoupled decay (PyTorch's default is 0.01).
    public init(groups: [ParameterGroup], learningRate: Double, beta1: Double = 0.9, beta2: Double = 0.999,
                epsilon: Double = 1e-8, weightDecay: Double = 1e-2) {
        precondition(learningRate >= 0, "AdamW: learning rate \(learningRate) < 0")
        precondition((0..<1).contains(beta1) && (0..<1).contains(beta2), "AdamW: betas (\(beta1), \(beta2)) outside [0, 1)")
        precondition(epsilon >= 0 && weightDecay >= 0, "AdamW: eps \(epsilon) and weight decay \(weightDecay) must be >= 0")
        registry = ParameterRegistry(groups)
        baseLearningRate = learningRate
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
        self.weightDecay = weightDecay
    }

    /// One group holding `parameters`.
    public convenience init(parameters: [Tensor], learningRate: Double, beta1: Double = 0.9, beta2: Double = 0.999,
                            epsilon: Double = 1e-8, weightDecay: Double = 1e-2) {
        self.init(groups: [ParameterGroup(parameters: parameters)], learningRate: learningRate, beta1: beta1, beta2: beta2,
                  epsilon: epsilon, weightDecay: weightDecay)
    }

    public func step(learningRate: Double) {
        stepCount += 1
        for group in registry.groups {
            let lr = group.effectiveLearningRate(scheduled: learningRate, base: baseLearningRate)
            let wd = group.weightDecay ?? weightDecay
            for p in group.parameters {
                guard let g = p.grad else { continue }
                precondition(g.count == p.count, "AdamW: gradient \(g.shape) for parameter '\(p.name)' \(p.shape)")
                let id = ObjectIdentifier(p)
                let state: State
                if let s = states[id] {
                    state = s
                } else {
                    state = State(expAvg: zerosLike(p), expAvgSq: zerosLike(p), step: 0)
                    states[id] = state
                }
                state.step += 1
                p.adamwStep(gradient: g, expAvg: state.expAvg, expAvgSq: state.expAvgSq, learningRate: lr,
                            beta1: beta1, beta2: beta2, epsilon: epsilon, weightDecay: wd, step: state.step)
            }
        }
    }

    public func zeroGrad(setToNone: Bool) { registry.zeroGrad(setToNone: setToNone) }

    public func stateDictionary() -> [String: Tensor] {
        var out: [String: Tensor] = ["step": Tensor(scalar: Float(stepCount))]
        for p in registry.parameters {
            guard let s = states[ObjectIdentifier(p)] else { continue }
            let key = registry.key(p)
            out[key + "/exp_avg"] = s.expAvg
            out[key + "/exp_avg_sq"] = s.expAvgSq
            out[key + "/step"] = Tensor(scalar: Float(s.step))
        }
        return out
    }

    public func loadStateDictionary(_ state: [String: Tensor]) throws { try load(state, adopting: false) }

    public func loadStateDictionary(adopting state: [String: Tensor]) throws { try load(state, adopting: true) }

    private func load(_ state: [String: Tensor], adopting: Bool) throws {
        guard let stepTensor = state["step"] else { throw OptimizerError.missingStateKey("step") }
        let newStepCount = try readStep(stepTensor, key: "step")
        var parts: [ObjectIdentifier: [String: Tensor]] = [:]
        for key in state.keys.sorted() where key != "step" {
            let value = state[key]!
            let (p, name) = try registry.split(key, stateNames: ["exp_avg", "exp_avg_sq", "step"])
            parts[ObjectIdentifier(p), default: [:]][name] = value
        }
        var newStates: [ObjectIdentifier: State] = [:]
        for p in registry.parameters {
            guard let entry = parts[ObjectIdentifier(p)] else { continue }
            let key = registry.key(p)
            for name in ["exp_avg", "exp_avg_sq", "step"] where entry[name] == nil {
                throw OptimizerError.missingStateKey(key + "/" + name)
            }
            newStates[ObjectIdentifier(p)] = State(
                expAvg: try stateCopy(entry["exp_avg"]!, like: p, key: key + "/exp_avg", adopting: adopting),
                expAvgSq: try stateCopy(entry["exp_avg_sq"]!, like: p, key: key + "/exp_avg_sq", adopting: adopting),
                step: try readStep(entry["step"]!, key: key + "/step"))
        }
        states = newStates
        stepCount = newStepCount
    }
}
