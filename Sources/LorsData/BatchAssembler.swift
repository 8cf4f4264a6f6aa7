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

    /// Assembles the samples `indices` (dataset indices) for `epoch`. Batch-level mixing (if configured)
    /// is keyed by `step` and `firstSample`, the global index of this slice's first sample in the step.
    public func assemble(_ indices: [Int], epoch: Int, step: Int = 0, firstSample: Int = 0) -> Batch {
        let b = indices.count, c = dataset.channels, h = dataset.height, w = dataset.width
        let imageSize = c * h * w
        if staging.count < b * imageSize { staging = [Float](repeating: 0, count: b * imageSize) }
        let images: Tensor
        if let cached = tensors[b] { images = cached } else { images = Tensor(uninitialized: [b, c, h, w]); tensors[b] = images }
        var labels = [Int32](repeating: 0, count: b)
        for (i, index) in indices.enumerated() { labels[i] = dataset.labels[index] }
        let softTargets: [Float]?
        var decision: BatchMixing.Decision? = nil
        let (dataset, augmentation, normalization, seed, mixing) = (self.dataset, self.augmentation, self.normalization, self.seed, self.mixing)
        softTargets = staging.withUnsafeMutableBufferPointer { buffer -> [Float]? in
            let base = buffer.baseAddress!
            parallelFor(b, grain: max(1, 16_384 / imageSize)) { start, end in
                for i in start..<end {
                    augmentation.apply(dataset, index: indices[i], seed: seed, epoch: epoch, normalization: normalization,
                                       into: base + i * imageSize)
                }
            }
            guard mixing.isEnabled else { return nil }
            let d = mixing.decide(seed: seed, step: step, firstSample: firstSample, height: h, width: w)
            decision = d
            return mixing.apply(d, images: base, batch: b, channels: c, height: h, width: w, labels: labels,
                                classes: dataset.classes)
        }
        staging.withUnsafeBufferPointer { images.copyFromHost(UnsafeBufferPointer(rebasing: $0[0..<(b * imageSize)])) }
        return Batch(images: images, labels: labels,
                     softTargets: softTargets.map { Tensor($0, shape: [b, dataset.classes]) }, mixing: decision)
    }
}
