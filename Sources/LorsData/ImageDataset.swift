import LorsTensor

/// An in-memory image classification set: `count` images of `[channels, height, width]` bytes
/// (row-major, channel planes) and one class label each.
public struct ImageDataset: Sendable {
    /// Short name for logs ("fashion_mnist/train").
    public var name: String
    /// Pixels of every image, `[count, channels, height, width]`, 0...255.
    public var pixels: [UInt8]
    /// Class of every image, in `0..<classes`.
    public var labels: [Int32]
    public var channels: Int
    public var height: Int
    public var width: Int
    /// Number of classes (labels are checked against it).
    public var classes: Int

    public init(name: String, pixels: [UInt8], labels: [Int32], channels: Int, height: Int, width: Int, classes: Int) {
        precondition(pixels.count == labels.count * channels * height * width,
                     "ImageDataset \(name): \(pixels.count) pixels for \(labels.count) images of [\(channels), \(height), \(width)]")
        self.name = name
        self.pixels = pixels
        self.labels = labels
        self.channels = channels
        self.height = height
        self.width = width
        self.classes = classes
    }

    /// Number of images.
    public var count: Int { labels.count }
    /// Bytes per image.
    public var imageSize: Int { channels * height * width }

    /// The first `limit` samples (all when `limit` is 0 or at least `count`).
    public func prefix(_ limit: Int) -> ImageDataset {
        guard limit > 0, limit < count else { return self }
        var copy = self
        copy.labels = Array(labels.prefix(limit))
        copy.pixels = Array(pixels.prefix(limit * imageSize))
        copy.name = name + "[:\(limit)]"
        return copy
    }

    /// A deterministic, learnable synthetic set for tests and smoke runs: class `k` has bright
    /// rows where `row % classes == k` (stripes repeating in every patch, so the class is visible
    /// to patch content without learned positions) plus counter-based noise.
    public static func synthetic(name: String = "synthetic", count: Int, channels: Int, size: Int, classes: Int,
                                 seed: UInt64) -> ImageDataset {
        var pixels = [UInt8](repeating: 0, count: count * channels * size * size)
        var labels = [Int32](repeating: 0, count: count)
        for i in 0..<count {
            let label = i % classes
            labels[i] = Int32(label)
            let key = RandomKeyShim.key(seed: seed, purpose: "synthetic." + name, index: i)
            let noise = key.uniforms(channels * size * size)
            for c in 0..<channels {
                for y in 0..<size {
                    for x in 0..<size {
                        let j = (c * size + y) * size + x
                        let on = y % classes == label
                        let value = (on ? 180 : 40) + noise[j] * 60
                        pixels[i * channels * size * size + j] = UInt8(min(255, value))
                    }
                }
            }
        }
        return ImageDataset(name: name, pixels: pixels, labels: labels, channels: channels, height: size, width: size,
                            classes: classes)
    }
}


/// Internal helper so data code spells its keys one way.
enum RandomKeyShim {
    static func key(seed: UInt64, purpose: String, index: Int, epoch: Int = 0) -> RandomKey {
        RandomKey(seed: seed, purpose: purpose, stream: (UInt64(epoch), UInt64(index)))
    }
}

/// Per-channel normalisation `(pixel / 255 − mean[c]) / std[c]`.
public struct Normalization: Sendable, Equatable {
    public var mean: [Float]
    public var std: [Float]

    public init(mean: [Float], std: [Float]) {
        precondition(mean.count == std.count && !mean.isEmpty, "Normalization: \(mean.count) means for \(std.count) stds")
        self.mean = mean
        self.std = std
    }

    /// Fashion-MNIST training-set statistics.
    public static let fashionMNIST = Normalization(mean: [0.2860], std: [0.3530])
    /// CIFAR-100 training-set statistics.
    public static let cifar100 = Normalization(mean: [0.5071, 0.4865, 0.4409], std: [0.2673, 0.2564, 0.2762])
    /// Maps bytes to [-1, 1].
    public static func centered(channels: Int) -> Normalization {
        Normalization(mean: Array(repeating: 0.5, count: channels), std: Array(repeating: 0.5, count: channels))
    }

    /// The statistics for `channels` channels (a single value is repeated).
    public func expanded(to channels: Int) -> Normalization {
        if mean.count == channels { return self }
        precondition(mean.count == 1, "Normalization has \(mean.count) channels, images have \(channels)")
        return Normalization(mean: Array(repeating: mean[0], count: channels), std: Array(repeating: std[0], count: channels))
    }
}
