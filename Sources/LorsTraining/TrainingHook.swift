
/// Something that runs at fixed moments of the loop (mmengine's hooks): LR schedule, logging,
/// evaluation, and later checkpoints (`LorsCheckpoint`) and signal handling. Hooks run in the order
/// of `Trainer.hooks`; every method has an empty default, so a hook implements only its moments.
/// A throwing hook ends the run with that error (after `afterRun` is *not* called).
public protocol TrainingHook: AnyObject {
    /// Name for logs and errors.
    var name: String { get }
    /// Once, before the first step (after a resume restored `trainer.state`).
    func beforeRun(_ trainer: Trainer) throws
    /// Before the first step of each epoch (`trainer.state.epoch` is the 0-based epoch about to run).
    func beforeEpoch(_ trainer: Trainer) throws
    /// Before each optimizer step (`trainer.state.step` is the number of steps completed so far).
    func beforeIteration(_ trainer: Trainer) throws
    /// After each optimizer step (`trainer.state.step` already counts it).
    func afterIteration(_ trainer: Trainer, _ result: StepResult) throws
    /// After the last step of each complete epoch (`trainer.state.epoch` is still the epoch that ended).
    func afterEpoch(_ trainer: Trainer) throws
    /// After each evaluation of the test set.
    func afterEvaluation(_ trainer: Trainer, _ result: EvaluationResult) throws
    /// Once, when the run ends normally (schedule done, `train.max_steps`, or a stop request).
    func afterRun(_ trainer: Trainer) throws
}

public extension TrainingHook {
    var name: String { String(describing: type(of: self)) }
    func beforeRun(_ trainer: Trainer) throws {}
    func beforeEpoch(_ trainer: Trainer) throws {}
    func beforeIteration(_ trainer: Trainer) throws {}
    func afterIteration(_ trainer: Trainer, _ result: StepResult) throws {}
    func afterEpoch(_ trainer: Trainer) throws {}
    func afterEvaluation(_ trainer: Trainer, _ result: EvaluationResult) throws {}
    func afterRun(_ trainer: Trainer) throws {}
}

/// Where the run is. Everything is a function of `step` and the epoch length, so a resume needs only the step.
public struct TrainingState: Sendable, Equatable {
    /// Optimizer steps completed (steps count from 1; 0 = none yet).
    public var step: Int
    /// Iterations (optimizer steps) per epoch.
    public let iterationsPerEpoch: Int
    /// Learning rate of the step in progress or last completed (set by the LR hook).
    public var learningRate: Double = 0
    /// Why the run stopped early, once a hook or `train.max_steps` asked it to.
    public var stopReason: String?

    public init(step: Int = 0, iterationsPerEpoch: Int) {
        precondition(iterationsPerEpoch > 0, "TrainingState: \(iterationsPerEpoch) iterations per epoch")
        self.step = step
        self.iterationsPerEpoch = iterationsPerEpoch
    }

    /// 0-based epoch of the next step (= of the current one inside hooks before it completes).
    public var epoch: Int { step / iterationsPerEpoch }
    /// 0-based position of the next step inside its epoch.
    public var iterationInEpoch: Int { step % iterationsPerEpoch }
}

/// What one optimizer step produced.
public struct StepResult: Sendable {
    /// The step's number (1-based, = `trainer.state.step` after it).
    public var step: Int
    /// 0-based epoch the step belongs to.
    public var epoch: Int
    /// The global loss: sum of per-sample losses over the global batch / global batch size.
    public var loss: Double
    /// Learning rate used.
    public var learningRate: Double
    /// Global gradient norm before clipping (nil when clipping is off).
    public var gradientNorm: Double?
    /// Samples processed by all ranks in this step (the global batch).
    public var samples: Int
    /// Wall time of the step in seconds (data + forward + backward + reduce + update).
    public var seconds: Double
    /// The loss or gradients were NaN/Inf and the update was skipped (`train.nonfinite: skip`).
    public var skipped: Bool = false
}

/// One pass over the test set.
public struct EvaluationResult: Sendable {
    /// Optimizer steps completed when it ran.
    public var step: Int
    /// 1-based number of epochs completed (or in progress) when it ran.
    public var epoch: Int
    /// What the task measured (the same on every rank).
    public var metrics: Metrics
    public var seconds: Double

    public init(step: Int, epoch: Int, metrics: Metrics, seconds: Double) {
        self.step = step
        self.epoch = epoch
        self.metrics = metrics
        self.seconds = seconds
    }
}
