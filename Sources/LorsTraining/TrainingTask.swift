import Foundation
import LorsData
import LorsDistributed
import LorsNN
import LorsTensor

/// Where a micro-batch sits in its step: the whole GLOBAL batch (dataset indices, the same on every rank), the
/// positions of this micro-batch inside it, the 0-based epoch and the 1-based optimizer step.
///
/// A task keys every per-sample random draw by (seed, epoch or step, global position), never by rank or micro-batch,
/// and may read samples outside `positions` (Mixup/CutMix partners), so its numbers do not depend on the world size
/// or `train.accumulation_steps`.
public struct BatchSlice: Sendable {
    public var globalBatch: [Int]
    public var positions: Range<Int>
    public var epoch: Int
    public var step: Int

    public init(globalBatch: [Int], positions: Range<Int>, epoch: Int, step: Int) {
        self.globalBatch = globalBatch
        self.positions = positions
        self.epoch = epoch
        self.step = step
    }

    /// Dataset indices of this micro-batch's samples.
    public var samples: [Int] { Array(globalBatch[positions]) }
    /// Position of this micro-batch's first sample in the global batch.
    public var firstSample: Int { positions.lowerBound }
}

/// One evaluation metric: a name (the key in `metrics.jsonl` and `eval/<name>` in TensorBoard) and how logs show it.
public struct Metric: Sendable, Equatable {
    public enum Display: Sendable, Equatable {
        /// A fraction shown as a percentage with two decimals (`top1 88.28%`).
        case percent
        /// A number shown with four decimals (`loss 0.3215`).
        case decimal
    }

    public var name: String
    public var value: Double
    public var display: Display

    public init(_ name: String, _ value: Double, display: Display = .decimal) {
        self.name = name
        self.value = value
        self.display = display
    }

    /// `name value` as logs show it.
    public var text: String {
        switch display {
        case .percent: return "\(name) \(String(format: "%.2f", 100 * value))%"
        case .decimal: return "\(name) \(String(format: "%.4f", value))"
        }
    }
}

/// What one evaluation of a task measured, in report order, and which metric picks the best checkpoint.
public struct Metrics: Sendable, Equatable {
    public var values: [Metric]
    /// The samples evaluated (over all ranks).
    public var samples: Int
    /// The name of the metric that picks `best` (higher is better).
    public var primary: String

    public init(_ values: [Metric], samples: Int, primary: String) {
        precondition(values.contains { $0.name == primary }, "the primary metric \(primary) is not among the metrics")
        self.values = values
        self.samples = samples
        self.primary = primary
    }

    /// The value of metric `name`, if measured.
    public subscript(name: String) -> Double? { values.first { $0.name == name }?.value }

    /// The value of the primary metric.
    public var primaryValue: Double { self[primary]! }

    /// `top1 88.28% top5 99.61% loss 0.3215` as logs show it.
    public var text: String { values.map(\.text).joined(separator: " ") }
}

/// What `lors train --check` and the reducer's search for shared weights learn from one forward pass.
public struct ForwardInspection: Sendable {
    /// The input the model saw (for images `[B, C, H, W]`).
    public var inputShape: [Int]
    /// The model's main output.
    public var outputShape: [Int]
    /// Seconds to assemble the input.
    public var assembleSeconds: Double
    /// Seconds of the forward pass.
    public var forwardSeconds: Double
}

/// How an evaluation reaches the other ranks and asks whether to stop between batches.
public struct EvaluationContext {
    /// The process group: metric sums, gathers of detections. Every rank makes the same collective calls.
    public var communicator: any Communicator
    /// GLOBAL evaluation batch (`eval.test_batch_size`): each rank evaluates its contiguous share of each one.
    public var batchSize: Int
    /// Called before every evaluation batch on every rank; throws `EvaluationInterrupted` when all ranks agreed to stop.
    public var checkStop: () throws -> Void
    /// The optimizer step of the weights evaluated (names the detector's results file).
    public var step: Int

    public init(communicator: any Communicator, batchSize: Int, step: Int = 0, checkStop: @escaping () throws -> Void = {}) {
        self.communicator = communicator
        self.batchSize = batchSize
        self.step = step
        self.checkStop = checkStop
    }
}

/// What the loop trains: the model and everything specific to it, behind one seam, so the loop, its hooks,
/// checkpoints and the command line never name a model or dataset type.
///
/// Per optimizer step the loop takes the step's global batch from the sampler (over `trainingSampleCount`
/// samples, grouped by `trainingGroups` when given), cuts this rank's slice into `train.accumulation_steps`
/// micro-batches, calls `stepStatistics` on the slices and sums the result over ranks (the collective before the
/// loss), then for each micro-batch calls `loss` and back-propagates it. The loss is a sum over the micro-batch's
/// samples divided by a GLOBAL normaliser (the global batch size, or a count summed by `stepStatistics`), so the
/// gradients summed over ranks and micro-batches are the global gradient whatever the world size.
public protocol TrainingTask: AnyObject {
    /// The model (parameters, buffers, checkpoints).
    var model: Module { get }
    /// What the task trains on, for the log (`fashion_mnist/train 60000 samples, fashion_mnist/test 10000 samples`).
    var dataDescription: String { get }
    /// Number of training samples the sampler draws global batches from.
    var trainingSampleCount: Int { get }
    /// The group of every training sample when global batches must hold one group (detection: orientation), else nil.
    var trainingGroups: [Int]? { get }
    /// Statistics of this rank's micro-batches of one step that the loop sums over ranks before any loss
    /// (the detector counts its matched queries); the default is none.
    func stepStatistics(_ slices: [BatchSlice]) throws -> [Double]
    /// The loss of one micro-batch: the sum of its per-sample losses divided by the global normaliser.
    /// `statistics`: `stepStatistics` summed over ranks (empty when the task has none).
    func loss(_ slice: BatchSlice, statistics: [Double], context: ForwardContext) throws -> Tensor
    /// Assembles `slice` and runs the model on it in inference mode (no dropout). Gradient recording is the
    /// caller's: `--check` turns it off, the reducer's search for weights used more than once keeps it on.
    func inspect(_ slice: BatchSlice) throws -> ForwardInspection
    /// Evaluates the test set (each rank its share), with metrics combined over ranks: the same on every rank.
    /// Forward passes run inside `withoutGradients`, collectives outside it (the gradient mode is process-wide, and
    /// simulated ranks hand over to each other inside collectives).
    func evaluate(_ context: EvaluationContext) throws -> Metrics
}

public extension TrainingTask {
    var trainingGroups: [Int]? { nil }
    func stepStatistics(_ slices: [BatchSlice]) throws -> [Double] { [] }
}

/// Evaluation, used by the trainer and by `lors eval` alike: the task's evaluation over a communicator, timed.
public enum Evaluation {
    /// Runs `task`'s evaluation with `communicator` (collective: every rank calls it) in batches of `batchSize`.
    /// `step` is the optimizer step of the weights evaluated.
    public static func run(_ task: any TrainingTask, communicator: any Communicator, batchSize: Int, step: Int = 0,
                           checkStop: @escaping () throws -> Void = {}) throws -> (metrics: Metrics, seconds: Double) {
        let started = Date()
        let context = EvaluationContext(communicator: communicator, batchSize: batchSize, step: step, checkStop: checkStop)
        let metrics = try task.evaluate(context)
        return (metrics, Date().timeIntervalSince(started))
    }
}
