import Foundation
import Logging
import LorsData
import LorsModels
import LorsNN
import LorsOptim
import LorsTensor

/// A classifier the loop can train: images `[B, C, H, W]` → logits `[B, classes]`.
public protocol ImageClassifier: Module {
    func callAsFunction(_ images: Tensor, _ context: ForwardContext) -> Tensor
}

extension VisionTransformer: ImageClassifier {}

/// Loop settings (from `train.*`, `eval.*`, `seed`, `data.augmentation.label_smoothing`).
public struct TrainerSettings: Sendable {
    /// GLOBAL batch per optimizer step.
    public var batchSize: Int
    /// Schedule length.
    public var epochs: Int
    /// Stop after the optimizer step with this number (nil: run the whole schedule).
    public var maxSteps: Int?
    /// Micro-batches per optimizer step (each rank's slice is split into this many parts).
    public var accumulationSteps: Int = 1
    /// Global gradient-norm clip (nil: off).
    public var gradientClip: Double?
    public var labelSmoothing: Float = 0
    public var seed: UInt64 = 0
    /// Evaluate every this many epochs (and at the end).
    public var evalIntervalEpochs: Int = 1
    /// GLOBAL evaluation batch.
    public var evalBatchSize: Int = 500
    /// What a step with a NaN/Inf loss or gradient does (`train.nonfinite`).
    public var nonFinite: NonFinitePolicy = .skip
    /// `skip`: stop with an error after this many non-finite steps in a row (`train.max_nonfinite_steps`).
    public var maxNonFiniteSteps: Int = 5

    public init(batchSize: Int, epochs: Int, maxSteps: Int? = nil) {
        self.batchSize = batchSize
        self.epochs = epochs
        self.maxSteps = maxSteps
    }
}

/// What the loop does with a step whose global loss or summed gradients contain NaN/Inf.
public enum NonFinitePolicy: String, Sendable {
    /// Skip the optimizer update with a warning (the batch is consumed, the step counts); stop with
    /// `TrainingError.nonFinite` after `maxNonFiniteSteps` such steps in a row.
    case skip
    /// Stop with `TrainingError.nonFinite` at the first one.
    case stop
}

/// The training loop, `run → epoch → step`, with everything else in hooks (mmengine style).
///
/// One step: the rank's slice of the global batch (epoch order from `EpochOrder`, keyed by seed and
/// epoch only) is split into `accumulationSteps` micro-batches; each is assembled (counter-based
/// augmentation), forwarded (dropout keyed by step and global sample index), its loss = sum of
/// per-sample losses / GLOBAL batch is back-propagated (gradients accumulate); then the
/// communicator sums gradients over ranks, gradients are clipped by global norm, the optimizer
/// steps at the scheduled rate, and `afterIteration` hooks run.
public final class Trainer {
    public let model: any ImageClassifier
    public let optimizer: any Optimizer
    public let schedule: LRSchedule
    public let trainData: BatchAssembler
    public let testData: BatchAssembler
    public let communicator: any TrainingCommunicator
    public let settings: TrainerSettings
    /// Hooks in the order they run.
    public var hooks: [any TrainingHook]
    public var state: TrainingState
    /// Console + log.txt through `RunLogHandler` (rank 0 writes; other ranks discard).
    public let log: Logger
    /// Latest evaluation, if any.
    public private(set) var lastEvaluation: EvaluationResult?
    /// Best evaluation by top-1.
    public private(set) var bestEvaluation: EvaluationResult?
    /// Set when the run stopped on a signal after writing a checkpoint (`requestResumableStop`):
    /// the process should exit with `RunExitCode.resume`.
    public private(set) var interruption: String?
    /// Non-finite steps in a row so far.
    public private(set) var consecutiveNonFiniteSteps = 0
    /// Where a non-finite value first appeared in the last step, if someone tracks it (`--debug`'s
    /// `NonFiniteLocatorHook`); a non-finite step then always stops the run with this text.
    public var nonFiniteLocator: (() -> String?)?

    /// Samples per rank per optimizer step.
    public var localBatchSize: Int { settings.batchSize / communicator.worldSize }
    /// Samples per micro-batch on this rank.
    public var microBatchSize: Int { localBatchSize / settings.accumulationSteps }
    /// Optimizer steps in the whole schedule.
    public var totalSteps: Int { settings.epochs * state.iterationsPerEpoch }
    /// The step at which the run ends (schedule end or `maxSteps`).
    public var finalStep: Int { min(totalSteps, settings.maxSteps ?? Int.max) }

    public init(model: any ImageClassifier, optimizer: any Optimizer, schedule: LRSchedule, trainData: BatchAssembler,
                testData: BatchAssembler, settings: TrainerSettings, communicator: any TrainingCommunicator = SingleProcessCommunicator(),
                hooks: [any TrainingHook] = [], log: Logger = .console) throws {
        let world = communicator.worldSize
        guard settings.batchSize % (world * settings.accumulationSteps) == 0 else {
            throw TrainingError.batchNotDivisible(batchSize: settings.batchSize, ranks: world,
                                                  accumulationSteps: settings.accumulationSteps)
        }
        guard trainData.dataset.count >= settings.batchSize else {
            throw TrainingError.datasetTooSmall(dataset: trainData.dataset.name, samples: trainData.dataset.count,
                                                batchSize: settings.batchSize)
        }
        self.model = model
        self.optimizer = optimizer
        self.schedule = schedule
        self.trainData = trainData
        self.testData = testData
        self.settings = settings
        self.communicator = communicator
        self.hooks = hooks
        self.log = log
        self.state = TrainingState(iterationsPerEpoch: trainData.dataset.count / settings.batchSize)
        precondition(schedule.iterationsPerEpoch == state.iterationsPerEpoch,
                     "LR schedule has \(schedule.iterationsPerEpoch) iterations per epoch, the data \(state.iterationsPerEpoch)")
    }

    /// Iterations per epoch for `samples` training samples at global batch `batchSize` (the last partial batch is dropped).
    public static func iterationsPerEpoch(samples: Int, batchSize: Int) -> Int { max(1, samples / batchSize) }

    /// Asks the loop to stop after the current step (signal hooks, early stopping).
    public func requestStop(_ reason: String) { if state.stopReason == nil { state.stopReason = reason } }

    /// Stops after the current step because of a signal; a checkpoint of the current step has been
    /// written, so the process exits with `RunExitCode.resume` (evaluation at the end is skipped).
    public func requestResumableStop(_ reason: String) {
        if interruption == nil { interruption = reason }
        requestStop(reason)
    }

    /// Hooks that can interrupt an evaluation between batches (all ranks agree; see `StopRequestHook`).
    private var stopPollers: [any StopPolling] { hooks.compactMap { $0 as? any StopPolling } }

    // MARK: - run → epoch → step

    /// Trains from `state.step` to `finalStep` (or a stop request), running the hooks.
    public func run() throws {
        try communicator.prepare(trainer: self)
        try hooks.forEach { try $0.beforeRun(self) }
        do {
            while state.step < finalStep && state.stopReason == nil {
                try runEpoch()
            }
        } catch is EvaluationInterrupted {
            // A stop request arrived during an evaluation; `interruption` is set, the checkpoint written.
        }
        if state.step >= (settings.maxSteps ?? Int.max) && state.step < totalSteps {
            state.stopReason = "reached train.max_steps = \(settings.maxSteps!)"
        }
        try hooks.forEach { try $0.afterRun(self) }
    }

    /// Runs the rest of the current epoch (all of it unless resuming mid-epoch).
    func runEpoch() throws {
        let epoch = state.epoch
        if state.iterationInEpoch == 0 { try hooks.forEach { try $0.beforeEpoch(self) } }
        let order = EpochOrder.shuffled(count: trainData.dataset.count, seed: settings.seed, epoch: epoch)
        while state.epoch == epoch && state.step < finalStep && state.stopReason == nil {
            let start = state.iterationInEpoch * settings.batchSize
            let result = try runStep(globalBatch: order[start..<(start + settings.batchSize)], epoch: epoch)
            try hooks.forEach { try $0.afterIteration(self, result) }
        }
        if state.epoch > epoch { // the epoch completed
            try withEpoch(epoch) { try hooks.forEach { try $0.afterEpoch(self) } }
        }
    }

    /// While `afterEpoch` hooks run, `epochJustCompleted` names the epoch that ended (0-based).
    public private(set) var epochJustCompleted: Int?
    private func withEpoch(_ epoch: Int, _ body: () throws -> Void) rethrows {
        epochJustCompleted = epoch
        defer { epochJustCompleted = nil }
        try body()
    }

    /// One optimizer step over `globalBatch` (dataset indices of the whole global batch).
    func runStep(globalBatch: ArraySlice<Int>, epoch: Int) throws -> StepResult {
        let started = Date()
        try hooks.forEach { try $0.beforeIteration(self) }
        let stepNumber = state.step + 1
        let learningRate = state.learningRate
        let local = localBatchSize, micro = microBatchSize
        let rankOffset = communicator.rank * local
        let parameters = model.trainableParameters
        optimizer.zeroGrad(setToNone: false)
        var localLoss = 0.0
        for part in 0..<settings.accumulationSteps {
            let first = rankOffset + part * micro
            let indices = Array(globalBatch[(globalBatch.startIndex + first)..<(globalBatch.startIndex + first + micro)])
            let batch = trainData.assemble(indices, epoch: epoch, step: stepNumber, firstSample: first)
            let context = ForwardContext(training: true, seed: settings.seed, step: stepNumber, firstSample: first)
            let logits = model(batch.images, context)
            let loss: Tensor
            if let soft = batch.softTargets {
                loss = Tensor.crossEntropy(logits, softTargets: soft, labelSmoothing: settings.labelSmoothing,
                                           reduction: .sumDividedBy(Float(settings.batchSize)))
            } else {
                loss = Tensor.crossEntropy(logits, targets: batch.labels, labelSmoothing: settings.labelSmoothing,
                                           reduction: .sumDividedBy(Float(settings.batchSize)))
            }
            communicator.beginBackward(synchronize: part == settings.accumulationSteps - 1)
            loss.backward()
            localLoss += Double(loss.item())
        }
        try communicator.synchronizeGradients(parameters)
        // The loss and a "this rank's gradients hold NaN/Inf" count in one reduction, so all ranks
        // agree on skipping even when each holds only a shard of the gradients.
        let sums = try communicator.sum([localLoss, Trainer.allFinite(parameters.compactMap(\.grad)) ? 0 : 1])
        let globalLoss = sums[0]
        if !globalLoss.isFinite || sums[1] > 0 {
            return try skipNonFiniteStep(stepNumber, epoch: epoch, loss: globalLoss, learningRate: learningRate, started: started)
        }
        consecutiveNonFiniteSteps = 0
        var norm: Double? = nil
        if let clip = settings.gradientClip, clip > 0 {
            norm = communicator.clipGradientNorm(parameters, maxNorm: clip)
        }
        try communicator.step(optimizer: optimizer, learningRate: learningRate)
        state.step = stepNumber
        return StepResult(step: stepNumber, epoch: epoch, loss: globalLoss, learningRate: learningRate, gradientNorm: norm,
                          samples: settings.batchSize, seconds: Date().timeIntervalSince(started))
    }

    /// A step whose loss or gradients are not finite: no update; warn, or stop (policy, K in a row, `--debug`).
    private func skipNonFiniteStep(_ step: Int, epoch: Int, loss: Double, learningRate: Double, started: Date) throws -> StepResult {
        consecutiveNonFiniteSteps += 1
        let what = loss.isFinite ? "the gradients contain NaN/Inf (loss \(loss))" : "the loss is \(loss)"
        if let locate = nonFiniteLocator {
            throw TrainingError.nonFinite(step: step, detail: "\(what); " + (locate() ?? "no op output or gradient was NaN/Inf"
                                                                     + " (the non-finite value came from another rank)"))
        }
        switch settings.nonFinite {
        case .stop:
            throw TrainingError.nonFinite(step: step, detail: "\(what) (train.nonfinite = stop; run with --debug to find the op)")
        case .skip where consecutiveNonFiniteSteps >= settings.maxNonFiniteSteps:
            throw TrainingError.nonFinite(step: step, detail: "\(what), \(consecutiveNonFiniteSteps) steps in a row "
                + "(train.max_nonfinite_steps = \(settings.maxNonFiniteSteps)); lower optimizer.lr, set train.grad_clip, "
                + "or run with --debug to find the op")
        case .skip:
            let message = "step \(step): \(what); step skipped without an update (\(consecutiveNonFiniteSteps) in a row, "
                + "stopping at train.max_nonfinite_steps = \(settings.maxNonFiniteSteps))"
            log.warning("\(message)")
        }
        optimizer.zeroGrad(setToNone: false)
        state.step = step
        return StepResult(step: step, epoch: epoch, loss: loss, learningRate: learningRate, gradientNorm: nil,
                          samples: settings.batchSize, seconds: Date().timeIntervalSince(started), skipped: true)
    }

    /// Whether every element of every tensor is finite (one vectorised pass; x·0 is NaN exactly for NaN/Inf).
    public static func allFinite(_ tensors: [Tensor]) -> Bool { Tensor.allFinite(tensors) }

    // MARK: - evaluation

    /// Evaluates the test set (each rank its contiguous share of every global eval batch), sums the
    /// counts over ranks, records the result and runs the `afterEvaluation` hooks.
    @discardableResult
    public func evaluate() throws -> EvaluationResult {
        let started = Date()
        let data = testData.dataset
        let world = communicator.worldSize, rank = communicator.rank
        let classes = data.classes
        var accuracy = TopKAccuracy()
        var lossSum = 0.0
        var batchStart = 0
        while batchStart < data.count {
            for poller in stopPollers where try poller.stopAgreed(self) { throw EvaluationInterrupted() }
            let batchEnd = min(data.count, batchStart + settings.evalBatchSize)
            let share = (batchEnd - batchStart + world - 1) / world
            let lower = min(batchEnd, batchStart + rank * share), upper = min(batchEnd, lower + share)
            if upper > lower {
                let batch = testData.assemble(Array(lower..<upper), epoch: 0)
                let (logits, loss) = withoutGradients { () -> ([Float], Float) in
                    let out = model(batch.images, .inference)
                    return (out.toArray(), Tensor.crossEntropy(out, targets: batch.labels, reduction: .sum).item())
                }
                accuracy.update(logits: logits, classes: classes, labels: batch.labels)
                lossSum += Double(loss)
            }
            batchStart = batchEnd
        }
        let sums = try communicator.sum([Double(accuracy.total), Double(accuracy.correctTop1), Double(accuracy.correctTop5), lossSum])
        let merged = TopKAccuracy(total: Int(sums[0]), correctTop1: Int(sums[1]), correctTop5: Int(sums[2]))
        let epochNumber = (state.step + state.iterationsPerEpoch - 1) / state.iterationsPerEpoch
        let result = EvaluationResult(step: state.step, epoch: max(1, epochNumber), accuracy: merged,
                                      loss: sums[3] / max(1, sums[0]), seconds: Date().timeIntervalSince(started))
        lastEvaluation = result
        if bestEvaluation.map({ result.top1 > $0.top1 }) ?? true { bestEvaluation = result }
        try hooks.forEach { try $0.afterEvaluation(self, result) }
        return result
    }
}


/// Thrown by `Trainer.evaluate()` when all ranks agreed to stop (signal) between evaluation batches.
public struct EvaluationInterrupted: Error, CustomStringConvertible {
    public init() {}
    public var description: String { "evaluation interrupted by a stop request" }
}
