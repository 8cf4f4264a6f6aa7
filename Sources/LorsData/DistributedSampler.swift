import LorsTensor

/// The one sampler of training, `--check` and evaluation: which samples form each GLOBAL batch, and
/// which part of it each rank takes. The global batches are a function of (seed, epoch) and never of
/// the world size, so N ranks together see exactly what one rank sees, and a run resumes from its step alone.
///
/// Two orders:
/// - **plain** (classification): epoch `e` visits the samples in
///   `RandomKey(seed:, purpose: "shuffle", stream: (e, 0)).permutation(n)` (or `0..<n` without shuffling);
///   global batch `j` is positions `j·B ..< (j+1)·B` of that order, and an incomplete last batch is dropped
///   (timm/DeiT's `drop_last`).
/// - **grouped** (detection, by orientation as mmdetection's `AspectRatioBatchSampler`): the samples are visited in
///   `RandomKey(seed, "det.sampler", (e, 0)).permutation(n)`; each goes to the bucket of its group, and a bucket
///   that reaches `B` samples is emitted as the next global batch. At the end of the epoch each non-empty bucket
///   is emitted as one shorter batch, in group order: every sample appears exactly once per epoch, every batch
///   holds one group, and at most one batch per group is short. (mmdetection instead concatenates the leftovers
///   and cuts them into batches of mixed orientation.)
///
/// Rank `r` of `W` takes positions `r·b/W ..< (r+1)·b/W` of a global batch of `b` samples (`slice`); with full
/// batches and `B` divisible by `W` every rank gets `B/W`, and a short batch may leave some ranks empty.
public struct DistributedSampler: Sendable {
    /// Number of samples in the dataset.
    public let datasetSize: Int
    /// Samples per optimizer step over all ranks (`train.batch_size`).
    public let globalBatchSize: Int
    /// Run seed.
    public let seed: UInt64
    /// Shuffle each epoch (training) or keep dataset order (plain order only).
    public let shuffle: Bool
    /// The group of every sample (grouped order), or nil (plain order).
    public let groups: [Int]?

    /// The plain order.
    public init(datasetSize: Int, globalBatchSize: Int, seed: UInt64, shuffle: Bool = true) {
        precondition(datasetSize >= 0 && globalBatchSize >= 1,
                     "sampler: batch size \(globalBatchSize) and dataset size \(datasetSize) must be positive")
        self.datasetSize = datasetSize
        self.globalBatchSize = globalBatchSize
        self.seed = seed
        self.shuffle = shuffle
        self.groups = nil
    }

    /// The grouped order over samples whose groups are `groups` (small non-negative integers).
    public init(groups: [Int], globalBatchSize: Int, seed: UInt64) {
        precondition(globalBatchSize >= 1 && groups.allSatisfy { $0 >= 0 }, "sampler: a positive batch size and groups ≥ 0")
        self.datasetSize = groups.count
        self.globalBatchSize = globalBatchSize
        self.seed = seed
        self.shuffle = true
        self.groups = groups
    }

    /// Orientation groups of images: 0 when wide (w/h ≥ 1), 1 when tall (w/h < 1).
    public static func orientationGroups(widths: [Int32], heights: [Int32]) -> [Int] {
        precondition(widths.count == heights.count, "one width per height")
        return zip(widths, heights).map { $0 >= $1 ? 0 : 1 }
    }

    /// Global batches per epoch: the full ones (plain order), or every batch including one short batch per
    /// group with a remainder (grouped order; the same count every epoch).
    public var batchesPerEpoch: Int {
        guard let groups else { return datasetSize / globalBatchSize }
        var sizes = [Int: Int]()
        for g in groups { sizes[g, default: 0] += 1 }
        return sizes.values.reduce(0) { $0 + ($1 + globalBatchSize - 1) / globalBatchSize }
    }

    /// The plain order of `epoch` (identical on every rank).
    public func order(epoch: Int) -> [Int] {
        shuffle ? RandomKey(seed: seed, purpose: "shuffle", stream: (UInt64(epoch), 0)).permutation(datasetSize) : Array(0..<datasetSize)
    }

    /// Every global batch of `epoch`, in order (dataset indices).
    public func batches(epoch: Int) -> [[Int]] {
        guard let groups else {
            let order = order(epoch: epoch)
            return (0..<batchesPerEpoch).map { Array(order[($0 * globalBatchSize)..<(($0 + 1) * globalBatchSize)]) }
        }
        let order = RandomKey(seed: seed, purpose: "det.sampler", stream: (UInt64(epoch), 0)).permutation(datasetSize)
        var buckets = [[Int]](repeating: [], count: (groups.max() ?? -1) + 1)
        var out: [[Int]] = []
        for sample in order {
            let group = groups[sample]
            buckets[group].append(sample)
            if buckets[group].count == globalBatchSize {
                out.append(buckets[group])
                buckets[group].removeAll(keepingCapacity: true)
            }
        }
        for bucket in buckets where !bucket.isEmpty { out.append(bucket) }
        return out
    }

    /// Global batch `index` of `epoch`.
    public func globalBatch(epoch: Int, index: Int) -> [Int] {
        precondition((0..<batchesPerEpoch).contains(index), "batch \(index) outside 0..<\(batchesPerEpoch) of epoch \(epoch)")
        if groups == nil {
            return Array(order(epoch: epoch)[(index * globalBatchSize)..<((index + 1) * globalBatchSize)])
        }
        return batches(epoch: epoch)[index]
    }

    /// Global position (epoch, batch index) of optimizer step `step` (0-based, counted across epochs).
    public func position(ofStep step: Int) -> (epoch: Int, batch: Int) {
        precondition(batchesPerEpoch > 0, "dataset of \(datasetSize) samples holds no batch of \(globalBatchSize)")
        return (step / batchesPerEpoch, step % batchesPerEpoch)
    }

    /// Positions `r·b/W ..< (r+1)·b/W` of a global batch of `count` samples that rank `rank` of `worldSize` takes.
    public static func slice(count: Int, rank: Int, worldSize: Int) -> Range<Int> {
        precondition(worldSize > 0 && (0..<worldSize).contains(rank), "rank \(rank) outside a world of \(worldSize)")
        return (rank * count / worldSize)..<((rank + 1) * count / worldSize)
    }

    /// Part `part` of `parts` equal parts of `range` (micro-batches of one rank's slice; sizes differ by at most one).
    public static func split(_ range: Range<Int>, part: Int, of parts: Int) -> Range<Int> {
        precondition(parts > 0 && (0..<parts).contains(part), "part \(part) outside 0..<\(parts)")
        let n = range.count
        return (range.lowerBound + part * n / parts)..<(range.lowerBound + (part + 1) * n / parts)
    }

    /// The evaluation shard of `rank`: a contiguous range, sizes differing by at most one, never padded, so summing
    /// per-rank counts (correct, total) gives the exact dataset metric.
    public static func evaluationRange(datasetSize: Int, rank: Int, worldSize: Int) -> Range<Int> {
        precondition(worldSize >= 1 && (0..<worldSize).contains(rank), "rank \(rank) outside a world of \(worldSize)")
        let base = datasetSize / worldSize, extra = datasetSize % worldSize
        let start = rank * base + min(rank, extra)
        return start..<(start + base + (rank < extra ? 1 : 0))
    }

    /// Evaluation shard sizes of every rank.
    public static func evaluationCounts(datasetSize: Int, worldSize: Int) -> [Int] {
        (0..<worldSize).map { evaluationRange(datasetSize: datasetSize, rank: $0, worldSize: worldSize).count }
    }

    /// The evaluation batches of a dataset of `count` samples in dataset order: `batchSize` each, the last one shorter.
    public static func evaluationBatches(count: Int, batchSize: Int) -> [Range<Int>] {
        precondition(batchSize > 0, "evaluation batch size \(batchSize)")
        return stride(from: 0, to: count, by: batchSize).map { $0..<min(count, $0 + batchSize) }
    }
}
