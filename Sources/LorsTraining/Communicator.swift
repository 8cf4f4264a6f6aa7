import LorsOptim
import LorsTensor

/// The seam to `LorsDistributed`: what the loop needs from the process group. The MPI, local and
/// simulated communicators with the bucketed gradient reducer conform through
/// `DataParallelCommunicator`; `SingleProcessCommunicator` is the trivial world of one (no reducer).
///
/// Contract (docs/numerics.md): each rank's loss is already divided by the GLOBAL batch,
/// so gradients are SUMMED, never averaged.
///
/// Per optimizer step the loop calls: `beginBackward(synchronize:)` before each micro-batch's
/// backward (true only for the last), `synchronizeGradients`, `clipGradientNorm` (when clipping),
/// `step(optimizer:learningRate:)`.
public protocol TrainingCommunicator: AnyObject {
    /// This process's rank in `0..<worldSize`.
    var rank: Int { get }
    var worldSize: Int { get }
    /// Called once before the first step with every trainable parameter (e.g. to broadcast rank 0's
    /// initial values and to install gradient-ready hooks for overlapped reduction).
    func prepare(parameters: [Tensor]) throws
    /// Called once by `Trainer.run()` before the first step; the default calls `prepare(parameters:)`
    /// with the model's trainable parameters. `DataParallelCommunicator` uses the model (names,
    /// buffers, a dry forward to find shared weights) and the optimizer (ZeRO-1).
    func prepare(trainer: Trainer) throws
    /// Called before every micro-batch's backward: `synchronize` is true only for the last one of the
    /// step, so gradient accumulation reduces once.
    func beginBackward(synchronize: Bool)
    /// Called after the last micro-batch's backward: on return every parameter's `.grad` holds the sum over ranks.
    func synchronizeGradients(_ parameters: [Tensor]) throws
    /// Clips the (reduced) gradients by their global L2 norm; returns the norm before clipping.
    func clipGradientNorm(_ parameters: [Tensor], maxNorm: Double) -> Double
    /// Applies the optimizer at `learningRate` (ZeRO-1: each rank its shard, then a gather). Collective.
    func step(optimizer: any Optimizer, learningRate: Double) throws
    /// Element-wise sum of `values` over ranks (losses, metric counts).
    func sum(_ values: [Double]) throws -> [Double]
}

public extension TrainingCommunicator {
    func prepare(trainer: Trainer) throws { try prepare(parameters: trainer.model.trainableParameters) }
    func beginBackward(synchronize: Bool) {}
    func clipGradientNorm(_ parameters: [Tensor], maxNorm: Double) -> Double {
        LorsOptim.clipGradientNorm(parameters: parameters, maxNorm: maxNorm)
    }
    func step(optimizer: any Optimizer, learningRate: Double) throws {
        withoutGradients { optimizer.step(learningRate: learningRate) }
    }
}

/// World size 1 without a reducer: nothing to reduce.
public final class SingleProcessCommunicator: TrainingCommunicator {
    public init() {}
    public var rank: Int { 0 }
    public var worldSize: Int { 1 }
    public func prepare(parameters: [Tensor]) throws {}
    public func synchronizeGradients(_ parameters: [Tensor]) throws {}
    public func sum(_ values: [Double]) throws -> [Double] { values }
}
