import Foundation
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

    public init(batchSize: Int, epochs: Int, maxSteps: Int? = nil) {
        self.batchSize = batchSize
        self.epochs = epochs
        self.maxSteps = maxSteps
    }
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
    /// Console + log.txt (rank 0 writes; other ranks discard).
    public let log: RunLog
    /// Latest evaluation, if any.
    public private(set) var lastEvaluation: EvaluationResult?
    /// Best evaluation by top-1.
    public private(set) var bestEvaluation: EvaluationResult?

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
                hooks: [any TrainingHook] = [], log: RunLog = RunLog()) throws {
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

    // MARK: - run → epoch → step

    /// Trains from `state.step` to `finalStep` (or a stop request), running the hooks.
    public func run() throws {
        try communicator.prepare(trainer: self)
        try hooks.forEach { try $0.beforeRun(self) }
        while state.step < finalStep && state.stopReason == nil {
            try runEpoch()
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
        let globalLoss = try communicator.sum([localLoss])[0]
        guard globalLoss.isFinite else { throw TrainingError.nonFiniteLoss(step: stepNumber, loss: globalLoss) }
        var norm: Double? = nil
        if let clip = settings.gradientClip, clip > 0 {
            norm = communicator.clipGradientNorm(parameters, maxNorm: clip)
        }
        try communicator.step(optimizer: optimizer, learningRate: learningRate)
        state.step = stepNumber
        return StepResult(step: stepNumber, epoch: epoch, loss: globalLoss, learningRate: learningRate, gradientNorm: norm,
                          samples: settings.batchSize, seconds: Date().timeIntervalSince(started))
    }

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
