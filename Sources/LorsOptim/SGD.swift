import LorsTensor

/// SGD with optional (Nesterov) momentum, PyTorch's `torch.optim.SGD` semantics with
/// `dampening=0`: weight decay is added to the gradient (`d = g + wd·p`, coupled, unlike
/// AdamW); the momentum buffer starts as a copy of the first `d`. State per parameter:
/// `momentum_buffer` (parameter shape), only when `momentum != 0`.
public final class SGD: Optimizer {
    private let registry: ParameterRegistry
    private var buffers: [ObjectIdentifier: Tensor] = [:]

    public var groups: [ParameterGroup] { registry.groups }
    public var parameters: [Tensor] { registry.parameters }
    public let baseLearningRate: Double
    public private(set) var stepCount = 0
    /// Momentum factor μ (0: plain SGD, no state).
    public let momentum: Double
    /// Weight decay of groups that do not set their own.
    public let weightDecay: Double
    /// Nesterov momentum (`d + μ·b` instead of `b`).
    public let nesterov: Bool

    public init(groups: [ParameterGroup], learningRate: Double, momentum: Double = 0, weightDecay: Double = 0,
                nesterov: Bool = false) {
        precondition(learningRate >= 0 && momentum >= 0 && weightDecay >= 0,
                     "SGD: lr \(learningRate), momentum \(momentum), weight decay \(weightDecay) must be >= 0")
        precondition(!nesterov || momentum > 0, "SGD: Nesterov momentum requires a momentum > 0")
        registry = ParameterRegistry(groups)
        baseLearningRate = learningRate
        self.momentum = momentum
        self.weightDecay = weightDecay
        self.nesterov = nesterov
    }

    /// One group holding `parameters`.
    public convenience init(parameters: [Tensor], learningRate: Double, momentum: Double = 0, weightDecay: Double = 0,
                            nesterov: Bool = false) {
        self.init(groups: [ParameterGroup(parameters: parameters)], learningRate: learningRate, momentum: momentum,
                  weightDecay: weightDecay, nesterov: nesterov)
    }

    public func step(learningRate: Double) {
        stepCount += 1
        for group in registry.groups {
            let lr = group.effectiveLearningRate(scheduled: learningRate, base: baseLearningRate)
            let wd = group.weightDecay ?? weightDecay
            for p in group.parameters {
                guard let g = p.grad else { continue }
                precondition(g.count == p.count, "SGD: gradient \(g.shape) for parameter '\(p.name)' \(p.shape)")
                var buffer: Tensor? = nil
                var initialize = false
                if momentum != 0 {
                    let id = ObjectIdentifier(p)
                    if let b = buffers[id] {
                        buffer = b
                    } else {
                        let b = zerosLike(p)
                        buffers[id] = b
                        buffer = b
                        initialize = true
                    }
                }
                p.sgdStep(gradient: g, momentumBuffer: buffer,
                                  learningRate: lr, momentum: momentum, weightDecay: wd, nesterov: nesterov,
                                  initializeBuffer: initialize)
            }
        }
    }

    public func zeroGrad(setToNone: Bool) { registry.zeroGrad(setToNone: setToNone) }

    public func stateDictionary() -> [String: Tensor] {
        var out: [String: Tensor] = ["step": Tensor(scalar: Float(stepCount))]
        for p in registry.parameters {
            if let b = buffers[ObjectIdentifier(p)] { out[registry.key(p) + "/momentum_buffer"] = b }
        }
        return out
    }

    public func loadStateDictionary(_ state: [String: Tensor]) throws {
        guard let stepTensor = state["step"] else { throw OptimizerError.missingStateKey("step") }
        let newStepCount = try readStep(stepTensor, key: "step")
        var newBuffers: [ObjectIdentifier: Tensor] = [:]
        let names: Set<String> = momentum != 0 ? ["momentum_buffer"] : []
        for key in state.keys.sorted() where key != "step" {
            let value = state[key]!
            let (p, _) = try registry.split(key, stateNames: names)
            newBuffers[ObjectIdentifier(p)] = try stateCopy(value, like: p, key: key)
        }
        buffers = newBuffers
        stepCount = newStepCount
    }
}
