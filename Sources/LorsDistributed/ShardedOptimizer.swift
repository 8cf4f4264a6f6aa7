import LorsOptim
import LorsTensor

/// ZeRO stage 1: optimizer state sharded across ranks.
///
/// The parameters, in the reducer's flat order, are cut into one contiguous range per rank at
/// parameter boundaries, balanced by element count (`partition`). Each rank builds its optimizer
/// (e.g. AdamW) on its own range only — with the same groups, learning rates and weight decays,
/// filtered to the parameters it owns — so it holds 1/N of the state. `step` updates the owned
/// parameters with the (already reduced, identical on every rank) gradients, then every owner
/// broadcasts its updated range. Each parameter's update is the same kernel on the same inputs as
/// without sharding, so the result equals the unsharded optimizer bit for bit.
///
/// `stateDictionary()` of `localOptimizer` holds this rank's shard (`<name>/exp_avg`, ...) plus
/// `step`, the layout the sharded checkpoint writes by owner rank.
public final class ShardedOptimizer {
    /// The communicator parameters are broadcast over.
    public let communicator: Communicator
    /// All parameters in flat order.
    public let parameters: [Tensor]
    /// Range of `parameters` indices owned by each rank.
    public let ranges: [Range<Int>]
    /// The optimizer over this rank's parameters.
    public let localOptimizer: Optimizer
    /// Flat staging buffer for the after-step broadcasts, `[total elements]`.
    private let staging: Tensor
    private let elementOffsets: [Int]

    /// - Parameters:
    ///   - parameters: every trainable parameter once, in the same order on every rank (use
    ///     `GradientReducer.parameters`).
    ///   - groups: the full model's parameter groups (settings per group); each is filtered to the owned parameters.
    ///   - makeOptimizer: builds the local optimizer from the filtered groups, e.g.
    ///     `{ AdamW(groups: $0, learningRate: 1e-3, weightDecay: 0.05) }`.
    public init(parameters: [Tensor], groups: [ParameterGroup], communicator: Communicator,
                makeOptimizer: ([ParameterGroup]) -> Optimizer) {
        self.communicator = communicator
        self.parameters = parameters
        ranges = ShardedOptimizer.partition(elementCounts: parameters.map(\.count), worldSize: communicator.size)
        let owned = Set(parameters[ranges[communicator.rank]].map(ObjectIdentifier.init))
        let local = groups.map { group -> ParameterGroup in
            var g = group
            g.parameters = group.parameters.filter { owned.contains(ObjectIdentifier($0)) }
            return g
        }
        localOptimizer = makeOptimizer(local)
        var offsets: [Int] = [], total = 0
        for p in parameters { offsets.append(total); total += p.count }
        elementOffsets = offsets + [total]
        staging = Tensor.zeros([total])
    }

    /// The rank that owns (updates, keeps state for) parameter index `i` of `parameters`.
    public func owner(ofParameterAt i: Int) -> Int { ranges.firstIndex { $0.contains(i) }! }

    /// Updates the owned parameters, then broadcasts every rank's range from its owner. Collective.
    public func step(learningRate: Double) throws {
        localOptimizer.step(learningRate: learningRate)
        for (root, range) in ranges.enumerated() where !range.isEmpty {
            let start = elementOffsets[range.lowerBound], end = elementOffsets[range.upperBound]
            if root == communicator.rank {
                for i in range { copy(parameters[i], to: elementOffsets[i]) }
            }
            try staging.withMutableHostBuffer(elements: start..<end) { try communicator.broadcast($0, root: root) }
            if root != communicator.rank {
                for i in range {
                    let p = parameters[i]
                    p.assign(Tensor(storage: staging.storage, shape: p.shape, offset: staging.offset + elementOffsets[i]))
                }
            }
        }
    }

    private func copy(_ p: Tensor, to offset: Int) {
        Tensor(storage: staging.storage, shape: p.shape, offset: staging.offset + offset).assign(p)
    }

    /// Contiguous ranges of indices, one per rank, cutting `elementCounts` at the boundaries whose
    /// running sums lie closest to `k · total / worldSize` (some ranges may be empty when there are
    /// fewer parameters than ranks).
    public static func partition(elementCounts: [Int], worldSize: Int) -> [Range<Int>] {
        precondition(worldSize >= 1, "world size \(worldSize)")
        var prefix = [0]
        for c in elementCounts { prefix.append(prefix.last! + c) }
        let total = prefix.last!
        var cuts = [0]
        for k in 1..<worldSize {
            let target = Double(total) * Double(k) / Double(worldSize)
            var best = cuts.last!
            for i in cuts.last!...elementCounts.count where abs(Double(prefix[i]) - target) < abs(Double(prefix[best]) - target) {
                best = i
            }
            cuts.append(best)
        }
        cuts.append(elementCounts.count)
        return (0..<worldSize).map { cuts[$0]..<cuts[$0 + 1] }
    }
}
