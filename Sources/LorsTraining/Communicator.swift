import LorsTensor

/// The seam to `LorsDistributed`: what the loop needs from the process group. The MPI
/// communicator and the gradient reducer (bucketed, overlapped with backward) conform through an
/// adapter; until then `SingleProcessCommunicator` (world size 1) is used.
///
/// Contract (INTERFACES.md "Numerics"): each rank's loss is already divided by the GLOBAL batch,
/// so gradients are SUMMED, never averaged.
public protocol TrainingCommunicator: AnyObject {
    /// This process's rank in `0..<worldSize`.
    var rank: Int { get }
    var worldSize: Int { get }
    /// Called once before the first step with every trainable parameter (e.g. to broadcast rank 0's
    /// initial values and to install gradient-ready hooks for overlapped reduction).
    func prepare(parameters: [Tensor]) throws
    /// Called after the last micro-batch's backward: on return every parameter's `.grad` holds the sum over ranks.
    func synchronizeGradients(_ parameters: [Tensor]) throws
    /// Element-wise sum of `values` over ranks (losses, metric counts).
    func sum(_ values: [Double]) throws -> [Double]
}

/// World size 1: nothing to reduce.
public final class SingleProcessCommunicator: TrainingCommunicator {
    public init() {}
    public var rank: Int { 0 }
    public var worldSize: Int { 1 }
    public func prepare(parameters: [Tensor]) throws {}
    public func synchronizeGradients(_ parameters: [Tensor]) throws {}
    public func sum(_ values: [Double]) throws -> [Double] { values }
}
