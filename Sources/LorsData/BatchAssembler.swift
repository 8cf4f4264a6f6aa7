import LorsTensor

/// Turns sample indices into an input tensor `[B, C, H, W]` (augmented, normalised) plus labels,
/// reusing one host staging buffer and one tensor per batch size across steps.
public final class BatchAssembler {
    public let dataset: ImageDataset
    public let normalization: Normalization
    public let augmentation: SampleAugmentation
    public let mixing: BatchMixing
    public let seed: UInt64
    private var staging: [Float] = []
    private var tensors: [Int: Tensor] = [:]

    public init(dataset: ImageDataset, normalization: Normalization, augmentation: SampleAugmentation = .none,
                mixing: BatchMixing = BatchMixing(), seed: UInt64) {
        self.dataset = dataset
        self.normalization = normalization.expanded(to: dataset.channels)
        self.augmentation = augmentation
        self.mixing = mixing
        self.seed = seed
    }

    /// One assembled batch.
    public struct Batch {
        /// `[B, C, H, W]`, valid until the next `assemble` call with the same batch size.
        public var images: Tensor
        /// Class of every sample.
        public var labels: [Int32]
        /// Mixed targets `[B, classes]` when Mixup/CutMix mixed this batch, else nil.
        public var softTargets: Tensor?
        /// The mixing decision (mode `.none` when not mixed).
        public var mixing: BatchMixing.Decision?
    }

    /// Assembles the samples `indices` (dataset indices) for `epoch`, without batch-level mixing partners from
    /// outside them (evaluation, probes): the global batch is `indices` itself.
    public func assemble(_ indices: [Int], epoch: Int, step: Int = 0) -> Batch {
        assemble(globalBatch: indices, positions: 0..<indices.count, epoch: epoch, step: step)
    }

    /// Assembles positions `positions` of the global batch `globalBatch` (dataset indices) for `epoch`.
    ///
    /// Batch-level mixing (if configured) is one decision per global step (keyed by `step`), and sample `i` of the
    /// global batch mixes with sample `B−1−i` of the GLOBAL batch; the partners outside `positions` are loaded
    /// and augmented here, so any split of the global batch over ranks and micro-batches gives the same samples.
    public func assemble(globalBatch: [Int], positions: Range<Int>, epoch: Int, step: Int) -> Batch {
        let b = positions.count, c = dataset.channels, h = dataset.height, w = dataset.width
        let imageSize = c * h * w
        let images: Tensor
        if let cached = tensors[b] { images = cached } else { images = Tensor(uninitialized: [b, c, h, w]); tensors[b] = images }
        let labels = positions.map { self.dataset.labels[globalBatch[$0]] }
        let decision = mixing.isEnabled ? mixing.decide(seed: seed, step: step, height: h, width: w) : nil
        // The positions whose augmented images are needed: this slice's, and with mixing their partners'.
        var needed = Array(positions)
        if decision.map({ $0.mode != .none }) ?? false {
            needed = Array(Set(needed + positions.map { globalBatch.count - 1 - $0 })).sorted()
        }
        let slot = Dictionary(uniqueKeysWithValues: needed.enumerated().map { ($0.element, $0.offset) })
        if staging.count < needed.count * imageSize { staging = [Float](repeating: 0, count: needed.count * imageSize) }
        let (dataset, augmentation, normalization, seed) = (self.dataset, self.augmentation, self.normalization, self.seed)
        var output = [Float](repeating: 0, count: decision == nil ? 0 : b * imageSize)
        staging.withUnsafeMutableBufferPointer { buffer in
            let base = buffer.baseAddress!
            parallelFor(needed.count, grain: max(1, 16_384 / imageSize)) { start, end in
                for i in start..<end {
                    augmentation.apply(dataset, index: globalBatch[needed[i]], seed: seed, epoch: epoch, normalization: normalization,
                                       into: base + i * imageSize)
                }
            }
        }
        var softTargets: Tensor? = nil
        if let decision {
            let partners = positions.map { slot[globalBatch.count - 1 - $0] ?? slot[$0]! }
            let partnerLabels = positions.map { dataset.labels[globalBatch[globalBatch.count - 1 - $0]] }
            let targets = staging.withUnsafeBufferPointer { source in
                output.withUnsafeMutableBufferPointer { out in
                    mixing.apply(decision, images: source.baseAddress!, own: positions.map { slot[$0]! }, partners: partners,
                                 into: out.baseAddress!, channels: c, height: h, width: w, labels: labels,
                                 partnerLabels: partnerLabels, classes: dataset.classes)
                }
            }
            softTargets = Tensor(targets, shape: [b, dataset.classes])
            output.withUnsafeBufferPointer { images.copyFromHost($0) }
        } else {
            // Without mixing `needed` is `positions` in order: the staging buffer is the batch.
            staging.withUnsafeBufferPointer { images.copyFromHost(UnsafeBufferPointer(rebasing: $0[0..<(b * imageSize)])) }
        }
        return Batch(images: images, labels: labels, softTargets: softTargets, mixing: decision)
    }
}
