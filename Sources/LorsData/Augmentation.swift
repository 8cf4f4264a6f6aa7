import LorsTensor

/// Per-sample augmentations with counter-based randomness: every draw is a function of
/// (seed, epoch, global sample index, call site), so a sample is augmented identically whichever
/// rank loads it and however the batch is split.
///
/// Order as torchvision's `RandomCrop(size, padding) → RandomHorizontalFlip → Normalize`.
public struct SampleAugmentation: Sendable, Equatable {
    /// Flip left–right with probability 1/2.
    public var randomFlip: Bool
    /// Zero-pad by this many pixels on each side, then crop back at a uniform offset (0 = off).
    public var cropPadding: Int

    public init(randomFlip: Bool = false, cropPadding: Int = 0) {
        self.randomFlip = randomFlip
        self.cropPadding = cropPadding
    }

    /// No augmentation (evaluation).
    public static let none = SampleAugmentation()

    /// The random choices for sample `index` in `epoch`: crop offsets `(dy, dx)` in `0...2·padding`, flip.
    public func draws(seed: UInt64, epoch: Int, index: Int) -> (dy: Int, dx: Int, flip: Bool) {
        var dy = 0, dx = 0, flip = false
        if cropPadding > 0 {
            let key = RandomKey(seed: seed, purpose: "aug.crop", stream: (UInt64(epoch), UInt64(index)))
            dy = key.integer(below: 2 * cropPadding + 1, at: 0)
            dx = key.integer(below: 2 * cropPadding + 1, at: 1)
        }
        if randomFlip {
            let key = RandomKey(seed: seed, purpose: "aug.flip", stream: (UInt64(epoch), UInt64(index)))
            flip = key.uniform(at: 0) < 0.5
        }
        return (dy, dx, flip)
    }

    /// Writes sample `index` of `dataset`, augmented for `epoch` and normalised, to `output`
    /// (`[C, H, W]` floats). Padding pixels are 0 before normalisation (torchvision's `fill=0`).
    public func apply(_ dataset: ImageDataset, index: Int, seed: UInt64, epoch: Int, normalization: Normalization,
                      into output: UnsafeMutablePointer<Float>) {
        let (dy, dx, flip) = draws(seed: seed, epoch: epoch, index: index)
        let c = dataset.channels, h = dataset.height, w = dataset.width, p = cropPadding
        let base = index * dataset.imageSize
        dataset.pixels.withUnsafeBufferPointer { pixels in
            for channel in 0..<c {
                let scale = 1 / (255 * normalization.std[channel])
                let shift = -normalization.mean[channel] / normalization.std[channel]
                for y in 0..<h {
                    let sy = y + dy - p
                    let row = output + (channel * h + y) * w
                    for x in 0..<w {
                        let cx = flip ? (w - 1 - x) : x
                        let sx = cx + dx - p
                        let value: Float
                        if sy >= 0 && sy < h && sx >= 0 && sx < w {
                            value = Float(pixels[base + (channel * h + sy) * w + sx])
                        } else {
                            value = 0
                        }
                        row[x] = value * scale + shift
                    }
                }
            }
        }
    }
}
