import LorsTensor

/// Which samples each rank trains on: the same global batches whatever the world size.
///
/// Epoch `e`'s order is `RandomKey(seed:, purpose: "shuffle", stream: (e, 0)).permutation(n)` (or
/// `0..<n` without shuffling), a pure function of (seed, epoch). Global batch `j` is positions
/// `j·B ..< (j+1)·B` of that order (B = `globalBatchSize`; an incomplete last batch is dropped, as
/// timm/DeiT do with `drop_last`), and rank `r` takes the contiguous slice
/// `r·B/W ..< (r+1)·B/W` of it. So N ranks together see exactly what one rank sees, and a run
/// resumes from (epoch, batch index) alone.
public struct DistributedSampler: Sendable {
    /// Number of samples in the dataset.
    public let datasetSize: Int
    /// Samples per optimizer step over all ranks (`train.batch_size`).
    public let globalBatchSize: Int
    /// This rank.
    public let rank: Int
    /// Number of ranks.
    public let worldSize: Int
    /// Run seed.
    public let seed: UInt64
    /// Shuffle each epoch (training) or keep dataset order.
    public let shuffle: Bool

    /// - Throws: `DistributedError.batchNotDivisible` naming both numbers when `globalBatchSize`
    ///   does not split evenly over `worldSize` ranks; `usage` for non-positive sizes or a bad rank.
    public init(datasetSize: Int, globalBatchSize: Int, rank: Int, worldSize: Int, seed: UInt64, shuffle: Bool = true) throws {
        guard worldSize >= 1, (0..<worldSize).contains(rank) else { throw DistributedError.invalidRank(rank, worldSize: worldSize) }
        guard globalBatchSize >= 1, datasetSize >= 0 else {
            throw DistributedError.usage("sampler: batch size \(globalBatchSize) and dataset size \(datasetSize) must be positive")
        }
        guard globalBatchSize % worldSize == 0 else {
            throw DistributedError.batchNotDivisible(globalBatchSize: globalBatchSize, worldSize: worldSize)
        }
        self.datasetSize = datasetSize
        self.globalBatchSize = globalBatchSize
        self.rank = rank
        self.worldSize = worldSize
        self.seed = seed
        self.shuffle = shuffle
    }

    /// Samples per rank per step (`globalBatchSize / worldSize`).
    public var localBatchSize: Int { globalBatchSize / worldSize }
    /// Full global batches per epoch (the incomplete remainder is dropped).
    public var batchesPerEpoch: Int { datasetSize / globalBatchSize }
    /// Position of this rank's first sample inside each global batch (`ForwardContext.firstSample`
    /// adds the batch's own start for counter-based per-sample randomness).
    public var sliceStart: Int { rank * localBatchSize }

    /// The epoch's order of dataset indices (identical on every rank).
    public func order(epoch: Int) -> [Int] {
        shuffle ? RandomKey(seed: seed, purpose: "shuffle", stream: (UInt64(epoch), 0)).permutation(datasetSize) : Array(0..<datasetSize)
    }

    /// Dataset indices of global batch `index` of `epoch` (every rank's samples, in rank order).
    public func globalBatch(epoch: Int, index: Int) -> [Int] {
        precondition((0..<batchesPerEpoch).contains(index), "batch \(index) outside 0..<\(batchesPerEpoch) of epoch \(epoch)")
        return Array(order(epoch: epoch)[(index * globalBatchSize)..<((index + 1) * globalBatchSize)])
    }

    /// This rank's dataset indices of global batch `index` of `epoch`.
    public func localBatch(epoch: Int, index: Int) -> [Int] {
        let start = index * globalBatchSize + sliceStart
        precondition((0..<batchesPerEpoch).contains(index), "batch \(index) outside 0..<\(batchesPerEpoch) of epoch \(epoch)")
        return Array(order(epoch: epoch)[start..<(start + localBatchSize)])
    }

    /// This rank's batches of `epoch` from batch `startBatch` on (resume), as (batch index, dataset indices).
    public func localBatches(epoch: Int, from startBatch: Int = 0) -> [(index: Int, samples: [Int])] {
        let order = order(epoch: epoch)
        return (min(startBatch, batchesPerEpoch)..<batchesPerEpoch).map { j in
            let start = j * globalBatchSize + sliceStart
            return (j, Array(order[start..<(start + localBatchSize)]))
        }
    }

    /// Global position (epoch, batch index) of optimizer step `step` (0-based, counted across epochs).
    public func position(ofStep step: Int) -> (epoch: Int, batch: Int) {
        precondition(batchesPerEpoch > 0, "dataset of \(datasetSize) samples holds no full batch of \(globalBatchSize)")
        return (step / batchesPerEpoch, step % batchesPerEpoch)
    }

    /// The evaluation shard of `rank`: a contiguous range, sizes differing by at most one, never
    /// padded, so summing per-rank counts (correct, total) gives the exact dataset metric.
    public static func evaluationRange(datasetSize: Int, rank: Int, worldSize: Int) -> Range<Int> {
        precondition(worldSize >= 1 && (0..<worldSize).contains(rank), "rank \(rank) outside a world of \(worldSize)")
        let base = datasetSize / worldSize, extra = datasetSize % worldSize
        let start = rank * base + min(rank, extra)
        return start..<(start + base + (rank < extra ? 1 : 0))
    }

    /// Evaluation shard sizes of every rank (for the report "rank r evaluated k samples").
    public static func evaluationCounts(datasetSize: Int, worldSize: Int) -> [Int] {
        (0..<worldSize).map { evaluationRange(datasetSize: datasetSize, rank: $0, worldSize: worldSize).count }
    }
}
