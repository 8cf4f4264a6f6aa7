import Foundation
import Logging
import LorsData
import LorsDistributed
import LorsNN
import LorsOptim
import LorsTensor

/// Loop settings (from `train.*`, `eval.*` and `seed`).
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

/// The training loop, `run → epoch → step`, with everything else in hooks (mmengine style) and everything
/// model-specific in its `TrainingTask`.
///
/// One step: the global batch comes from the sampler (a function of seed, epoch and batch index only); this rank's
/// slice of it is split into `accumulationSteps` micro-batches; the task's step statistics are summed over ranks
/// (when it has any); each micro-batch's loss (sum of per-sample losses / a GLOBAL normaliser) is back-propagated
/// (gradients accumulate); then the communicator sums gradients over ranks, gradients are clipped by global norm,
/// the optimizer steps at the scheduled rate, and `afterIteration` hooks run.
public final class Trainer {
    public let task: any TrainingTask
    public let optimizer: any Optimizer
    public let schedule: LRSchedule
    /// The global batches of every epoch.
    public let sampler: DistributedSampler
    /// Gradient reduction, clipping and the (ZeRO-1) optimizer step over the process group.
    public let parallel: DataParallel
    public let settings: TrainerSettings
    /// Hooks in the order they run.
    public var hooks: [any TrainingHook]
    public var state: TrainingState
    /// Console + log.txt through `RunLogHandler` (rank 0 writes; other ranks discard).
    public let log: Logger
    /// Latest evaluation, if any.
    public private(set) var lastEvaluation: EvaluationResult?
    /// Best evaluation by the task's primary metric.
    public private(set) var bestEvaluation: EvaluationResult?
    /// Set when the run stopped on a signal after writing a checkpoint (`requestResumableStop`):
    /// the process should exit with `RunExitCode.resume`.
    public private(set) var interruption: String?
    /// Non-finite steps in a row so far.
    public private(set) var consecutiveNonFiniteSteps = 0
    /// Where a non-finite value first appeared in the last step, if someone tracks it (`--debug`'s
    /// `NonFiniteLocatorHook`); a non-finite step then always stops the run with this text.
    public var nonFiniteLocator: (() -> String?)?
    /// The global batches of the epoch in progress.
    private var epochBatches: (epoch: Int, batches: [[Int]])?

    /// The process group (MPI, local, or a simulated replica).
    public var communicator: any Communicator { parallel.communicator }
    /// The model the task trains.
    public var model: Module { task.model }
    /// Samples per rank per optimizer step.
    public var localBatchSize: Int { settings.batchSize / communicator.size }
    /// Samples per micro-batch on this rank.
    public var microBatchSize: Int { localBatchSize / settings.accumulationSteps }
    /// Optimizer steps in the whole schedule.
    public var totalSteps: Int { settings.epochs * state.iterationsPerEpoch }
    /// The step at which the run ends (schedule end or `maxSteps`).
    public var finalStep: Int { min(totalSteps, settings.maxSteps ?? Int.max) }

    public init(task: any TrainingTask, optimizer: any Optimizer, schedule: LRSchedule, settings: TrainerSettings,
                parallel: DataParallel = DataParallel(), hooks: [any TrainingHook] = [],
                log: Logger = .console) throws {
        let world = parallel.communicator.size
        guard settings.batchSize % (world * settings.accumulationSteps) == 0 else {
            throw TrainingError.batchNotDivisible(batchSize: settings.batchSize, ranks: world,
                                                  accumulationSteps: settings.accumulationSteps)
        }
        let sampler = Trainer.sampler(task, settings: settings)
        guard sampler.batchesPerEpoch > 0 else {
            throw TrainingError.datasetTooSmall(dataset: task.dataDescription, samples: task.trainingSampleCount,
                                                batchSize: settings.batchSize)
        }
        self.task = task
        self.optimizer = optimizer
        self.schedule = schedule
        self.sampler = sampler
        self.settings = settings
        self.parallel = parallel
        self.hooks = hooks
        self.log = log
        self.state = TrainingState(iterationsPerEpoch: sampler.batchesPerEpoch)
        precondition(schedule.iterationsPerEpoch == state.iterationsPerEpoch,
                     "LR schedule has \(schedule.iterationsPerEpoch) iterations per epoch, the data \(state.iterationsPerEpoch)")
    }

    /// The sampler of `task`'s training set at `settings`' global batch size and seed (grouped when the task groups
    /// its samples); its `batchesPerEpoch` is the number of optimizer steps per epoch.
    public static func sampler(_ task: any TrainingTask, settings: TrainerSettings) -> DistributedSampler {
        task.trainingGroups.map { DistributedSampler(groups: $0, globalBatchSize: settings.batchSize, seed: settings.seed) }
            ?? DistributedSampler(datasetSize: task.trainingSampleCount, globalBatchSize: settings.batchSize, seed: settings.seed)
    }

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
        try parallel.prepare(trainer: self)
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
        while state.epoch == epoch && state.step < finalStep && state.stopReason == nil {
            let result = try runStep(globalBatch: globalBatch(epoch: epoch, index: state.iterationInEpoch), epoch: epoch)
            try hooks.forEach { try $0.afterIteration(self, result) }
        }
        if state.epoch > epoch { // the epoch completed
            try withEpoch(epoch) { try hooks.forEach { try $0.afterEpoch(self) } }
        }
    }

    /// Global batch `index` of `epoch` (the epoch's batches are computed once).
    func globalBatch(epoch: Int, index: Int) -> [Int] {
        if epochBatches?.epoch != epoch { epochBatches = (epoch, sampler.batches(epoch: epoch)) }
        return epochBatches!.batches[index]
    }

    /// This rank's micro-batches of a step over `globalBatch`: its slice, split into `accumulationSteps` parts.
    func microBatches(globalBatch: [Int], epoch: Int, step: Int) -> [BatchSlice] {
        let mine = DistributedSampler.slice(count: globalBatch.count, rank: communicator.rank, worldSize: communicator.size)
        return (0..<settings.accumulationSteps).map {
            BatchSlice(globalBatch: globalBatch, positions: DistributedSampler.split(mine, part: $0, of: settings.accumulationSteps),
                       epoch: epoch, step: step)
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
    func runStep(globalBatch: [Int], epoch: Int) throws -> StepResult {
        let started = Date()
        try hooks.forEach { try $0.beforeIteration(self) }
        let stepNumber = state.step + 1
        let learningRate = state.learningRate
        let parameters = model.trainableParameters
        optimizer.zeroGrad(setToNone: false)
        let slices = microBatches(globalBatch: globalBatch, epoch: epoch, step: stepNumber)
        let local = try task.stepStatistics(slices)
        let statistics = local.isEmpty ? [] : try communicator.allReduceSum(local)
        var localLoss = 0.0
        for (part, slice) in slices.enumerated() {
            let context = ForwardContext(training: true, seed: settings.seed, step: stepNumber, firstSample: slice.firstSample)
            let loss = try task.loss(slice, statistics: statistics, context: context)
            parallel.beginBackward(synchronize: part == slices.count - 1)
            loss.backward()
            localLoss += Double(loss.item())
        }
        try parallel.synchronizeGradients(parameters)
        // The loss and a "this rank's gradients hold NaN/Inf" count in one reduction, so all ranks
        // agree on skipping even when each holds only a shard of the gradients.
        let sums = try communicator.allReduceSum([localLoss, Tensor.allFinite(parameters.compactMap(\.grad)) ? 0 : 1])
        let globalLoss = sums[0]
        if !globalLoss.isFinite || sums[1] > 0 {
            return try skipNonFiniteStep(stepNumber, epoch: epoch, loss: globalLoss, learningRate: learningRate,
                                         samples: globalBatch.count, started: started)
        }
        consecutiveNonFiniteSteps = 0
        var norm: Double? = nil
        if let clip = settings.gradientClip, clip > 0 {
            norm = parallel.clipGradientNorm(parameters, maxNorm: clip)
        }
        try parallel.step(optimizer: optimizer, learningRate: learningRate)
        state.step = stepNumber
        return StepResult(step: stepNumber, epoch: epoch, loss: globalLoss, learningRate: learningRate, gradientNorm: norm,
                          samples: globalBatch.count, seconds: Date().timeIntervalSince(started))
    }

    /// A step whose loss or gradients are not finite: no update; warn, or stop (policy, K in a row, `--debug`).
    private func skipNonFiniteStep(_ step: Int, epoch: Int, loss: Double, learningRate: Double, samples: Int,
                                   started: Date) throws -> StepResult {
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
                          samples: samples, seconds: Date().timeIntervalSince(started), skipped: true)
    }


    // MARK: - evaluation

    /// Evaluates the task's test set over the communicator (`Evaluation.run`), records the result and runs the
    /// `afterEvaluation` hooks. A stop request agreed between evaluation batches throws `EvaluationInterrupted`.
    @discardableResult
    public func evaluate() throws -> EvaluationResult {
        let pollers = stopPollers
        let (metrics, seconds) = try Evaluation.run(task, communicator: communicator, batchSize: settings.evalBatchSize,
                                                     step: state.step) { [unowned self] in
            for poller in pollers where try poller.stopAgreed(self) { throw EvaluationInterrupted() }
        }
        let epochNumber = (state.step + state.iterationsPerEpoch - 1) / state.iterationsPerEpoch
        let result = EvaluationResult(step: state.step, epoch: max(1, epochNumber), metrics: metrics, seconds: seconds)
        lastEvaluation = result
        if bestEvaluation.map({ metrics.primaryValue > $0.metrics.primaryValue }) ?? true { bestEvaluation = result }
        try hooks.forEach { try $0.afterEvaluation(self, result) }
        return result
    }
}


/// Thrown by `Trainer.evaluate()` when all ranks agreed to stop (signal) between evaluation batches.
public struct EvaluationInterrupted: Error, CustomStringConvertible {
    public init() {}
    public var description: String { "evaluation interrupted by a stop request" }
}
