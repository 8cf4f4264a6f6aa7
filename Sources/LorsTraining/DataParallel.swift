import Foundation
import LorsConfig
import LorsDistributed
import LorsNN
import LorsOptim
import LorsTensor

/// Data parallelism over a `Communicator` (MPI, local or a simulated replica): start-up broadcast + checksum, the
/// bucketed `GradientReducer` (all-reduces launched from the gradient-final hooks during backward, shared LORS
/// weights in the final bucket), the reducer's fixed-order clipping and, with `zero1`, a `ShardedOptimizer`.
///
/// Contract (docs/numerics.md): each rank's loss is already divided by the GLOBAL normaliser, so gradients are
/// SUMMED, never averaged. Per optimizer step the loop calls `beginBackward(synchronize:)` before each micro-batch's
/// backward (true only for the last), `synchronizeGradients`, `clipGradientNorm` (when clipping) and
/// `step(optimizer:learningRate:)`.
///
/// The same object runs at communicator size 1 (over `LocalCommunicator`), so the clip norm is summed in the same order
/// whatever the communicator size.
public final class DataParallel {
    /// The process group.
    public let communicator: any Communicator
    /// Bucket size cap (`dist.bucket_cap_mb`).
    public let bucketCapBytes: Int
    /// Shard the optimizer state (`dist.zero1`).
    public let zero1: Bool
    /// Start bucket all-reduces during backward (`dist.overlap`).
    public let overlap: Bool
    /// Built by `prepare`.
    public private(set) var reducer: GradientReducer?
    /// Built by `prepare` when `zero1`.
    public private(set) var shardedOptimizer: ShardedOptimizer?
    /// Names of the parameters used more than once per forward (found by a dry forward in `prepare`).
    public private(set) var sharedParameterNames: [String] = []

    public init(_ communicator: any Communicator = LocalCommunicator(), bucketCapBytes: Int = GradientReducer.defaultBucketCapBytes,
                zero1: Bool = false, overlap: Bool = true) {
        self.communicator = communicator
        self.bucketCapBytes = bucketCapBytes
        self.zero1 = zero1
        self.overlap = overlap
    }

    /// What `settings` ask for (`dist.bucket_cap_mb`, `dist.zero1`, `dist.overlap`) over `communicator`.
    public convenience init(_ communicator: any Communicator, settings: RunSettings.Dist) {
        self.init(communicator, bucketCapBytes: max(4, Int(settings.bucketCapMB * 1_048_576)), zero1: settings.zero1,
                  overlap: settings.overlap)
    }


    /// Without a model: broadcast + reducer over unnamed parameters, no shared-weight marking.
    public func prepare(parameters: [Tensor]) throws {
        guard reducer == nil else { return }
        let named = parameters.enumerated().map { ($0.element.name.isEmpty ? "param.\($0.offset)" : $0.element.name, $0.element) }
        try ReplicaSynchronization.broadcastInitialState(named, communicator: communicator)
        reducer = GradientReducer(parameters: named, communicator: communicator, bucketCapBytes: bucketCapBytes, overlap: overlap)
    }

    /// Broadcasts rank 0's parameters and buffers (each unique tensor once) and compares checksums
    /// on all ranks; finds the shared weights by a one-sample dry forward; builds the reducer (and
    /// the ZeRO-1 optimizer).
    public func prepare(trainer: Trainer) throws {
        guard reducer == nil else { return }
        let model = trainer.model
        let named = model.namedParameters()
        try ReplicaSynchronization.broadcastInitialState(named + model.namedBuffers(), communicator: communicator)
        let trainable = named.filter { $0.1.requiresGrad }
        let shared = try GradientReducer.parametersUsedMoreThanOnce(trainable.map(\.1)) {
            _ = try trainer.task.inspect(BatchSlice(globalBatch: [0], positions: 0..<1, epoch: 0, step: 0))
        }
        let reducer = GradientReducer(parameters: trainable, communicator: communicator, bucketCapBytes: bucketCapBytes,
                                      sharedParameters: shared, overlap: overlap)
        self.reducer = reducer
        sharedParameterNames = reducer.names.enumerated().filter { reducer.isShared[$0.offset] }.map(\.element)
        if zero1 {
            let template = trainer.optimizer
            shardedOptimizer = ShardedOptimizer(parameters: reducer.parameters, groups: template.groups, communicator: communicator) {
                DataParallel.rebuild(template, groups: $0)
            }
        }
    }

    public func beginBackward(synchronize: Bool) {
        reducer?.beginBackward(synchronize: synchronize)
    }

    public func synchronizeGradients(_ parameters: [Tensor]) throws {
        guard let reducer else { throw DistributedError.usage("DataParallel: prepare was not called") }
        try reducer.finish()
    }

    public func clipGradientNorm(_ parameters: [Tensor], maxNorm: Double) -> Double {
        reducer?.clipGradientNorm(maxNorm: maxNorm) ?? LorsOptim.clipGradientNorm(parameters: parameters, maxNorm: maxNorm)
    }

    public func step(optimizer: any Optimizer, learningRate: Double) throws {
        if let shardedOptimizer {
            // Not inside `withoutGradients`: the gradient mode is process-wide, and the step's broadcasts hand the
            // baton to other simulated replicas, which must not run their forward with recording off.
            // The optimizer kernels and `assign` do not record.
            try shardedOptimizer.step(learningRate: learningRate)
        } else {
            withoutGradients { optimizer.step(learningRate: learningRate) }
        }
    }

    /// An optimizer of `template`'s type and settings over `groups` (the ZeRO-1 shard).
    static func rebuild(_ template: any Optimizer, groups: [ParameterGroup]) -> any Optimizer {
        switch template {
        case let a as AdamW:
            return AdamW(groups: groups, learningRate: a.baseLearningRate, beta1: a.beta1, beta2: a.beta2, epsilon: a.epsilon,
                         weightDecay: a.weightDecay)
        case let s as SGD:
            return SGD(groups: groups, learningRate: s.baseLearningRate, momentum: s.momentum, weightDecay: s.weightDecay,
                       nesterov: s.nesterov)
        default:
            preconditionFailure("dist.zero1: no sharded form of \(type(of: template))")
        }
    }
}
