import Foundation
import LorsDetection
import LorsImage
import LorsTensor

/// A decoded image whose size disagrees with the annotations, named with its file and image id.
public struct DetectionImageError: Error, CustomStringConvertible, Equatable, Sendable {
    public let file: String
    public let imageID: Int
    public let reason: String
    public var description: String { "\(file) (image \(imageID)): \(reason)" }
}

/// One rank's slice of a global detection batch.
public struct DetectionBatch {
    /// `[b, 3, H, W]`: normalised RGB, zero beyond each image's valid size; H and W are the largest padded
    /// (multiple of `sizeDivisor`) height and width of the whole GLOBAL batch, so they are the same on every rank.
    public var images: Tensor
    /// Dataset indices of the samples of this slice.
    public var imageIndices: [Int]
    /// Size of every image after its transforms (mmdetection's `img_shape`).
    public var validSizes: [(height: Int, width: Int)]
    /// `scale_factor` (w, h) of every image's last resize.
    public var scaleFactors: [(width: Double, height: Double)]
    public var flipped: [Bool]
    /// xyxy boxes in the transformed image, and their contiguous labels.
    public var boxes: [[Float]]
    public var labels: [[Int32]]
    public var ignoredBoxes: [[Float]]
    /// Samples of this slice replaced because their image could not be used (`skipBadImages`), with the reason.
    public var warnings: [String]
}

/// Decodes, transforms and assembles detection samples of a COCO index (see `DetectionPipeline`).
///
/// With `skipBadImages` an image that is missing, corrupt or of another size than its annotations say is replaced by
/// an image of the annotated size filled with the (rounded) normalisation mean, without boxes, transformed by the
/// same plan: the sample keeps its place and its size, so the batch's shapes and every other sample are unchanged
/// and no other rank needs to know. Each replacement is reported in the batch's `warnings`. Without it the first such
/// image of a slice is an error naming the file and the image id.
public final class DetectionBatchAssembler: @unchecked Sendable {
    public let index: COCODetectionIndex
    public let imageDirectory: String
    public let pipeline: DetectionPipeline
    public let normalization: DetectionNormalization
    public let seed: UInt64
    public let sizeDivisor: Int
    public let skipBadImages: Bool

    public init(index: COCODetectionIndex, imageDirectory: String, pipeline: DetectionPipeline, seed: UInt64,
                normalization: DetectionNormalization = .imagenet, sizeDivisor: Int = 32, skipBadImages: Bool = false) {
        precondition(sizeDivisor > 0, "sizeDivisor must be positive")
        self.index = index
        self.imageDirectory = imageDirectory
        self.pipeline = pipeline
        self.normalization = normalization
        self.seed = seed
        self.sizeDivisor = sizeDivisor
        self.skipBadImages = skipBadImages
    }

    /// The transform plan of dataset image `image` in `epoch` (from the annotated size; nothing is decoded).
    public func plan(_ image: Int, epoch: Int) -> DetectionPipeline.Plan {
        pipeline.plan(width: Int(index.widths[image]), height: Int(index.heights[image]), seed: seed, epoch: epoch, index: image)
    }

    /// The padded `(height, width)` of a global batch: the largest planned height and width, rounded up to a multiple
    /// of `sizeDivisor`.
    public func paddedSize(_ globalBatch: [Int], epoch: Int) -> (height: Int, width: Int) {
        var h = 0, w = 0
        for image in globalBatch {
            let p = plan(image, epoch: epoch)
            h = max(h, p.height)
            w = max(w, p.width)
        }
        return (paddedUp(h, to: sizeDivisor), paddedUp(w, to: sizeDivisor))
    }

    public func path(_ image: Int) -> String { (imageDirectory as NSString).appendingPathComponent(index.fileName(image)) }

    /// The original sample of dataset image `image`: decoded as RGB, with its annotations. Throws an error naming the
    /// file and image id when the file is missing or corrupt or its size is not the annotated one.
    public func load(_ image: Int) throws -> DetectionSample {
        let file = path(image)
        let decoded: ByteImage
        do {
            decoded = try ByteImage.read(contentsOf: file, channels: 3)
        } catch let error as ImageError {
            throw error.withImageID(index.imageIDs[image])
        }
        let w = Int(index.widths[image]), h = Int(index.heights[image])
        guard decoded.width == w && decoded.height == h else {
            throw DetectionImageError(file: file, imageID: index.imageIDs[image],
                                      reason: "the image is \(decoded.width)×\(decoded.height) but the annotations say \(w)×\(h)")
        }
        return DetectionSample(image: decoded, boxes: Array(index.boxes(image)), labels: Array(index.labels(image)),
                               ignoredBoxes: Array(index.ignoredBoxes(image)))
    }

    /// The stand-in for an unusable image (see the type's documentation).
    public func replacement(_ image: Int) -> DetectionSample {
        let w = Int(index.widths[image]), h = Int(index.heights[image])
        let colour = normalization.mean.map { UInt8(clamping: Int($0.rounded())) }
        var pixels = [UInt8](repeating: 0, count: w * h * 3)
        for i in 0..<(w * h) { pixels[3 * i] = colour[0]; pixels[3 * i + 1] = colour[1]; pixels[3 * i + 2] = colour[2] }
        return DetectionSample(image: ByteImage(width: w, height: h, channels: 3, pixels: pixels), boxes: [], labels: [])
    }

    /// Decodes and transforms one sample; `warning` is set when it was replaced.
    public func prepare(_ image: Int, epoch: Int) throws -> (sample: DetectionSample, warning: String?) {
        let plan = plan(image, epoch: epoch)
        do {
            return (DetectionPipeline.apply(plan, to: try load(image)), nil)
        } catch {
            guard skipBadImages else { throw error }
            return (DetectionPipeline.apply(plan, to: replacement(image)), "\(error); replaced by a blank image without boxes")
        }
    }

    /// Writes a prepared sample as `[3, height, width]` floats.
    public func write(_ sample: DetectionSample, into output: UnsafeMutablePointer<Float>, height: Int, width: Int) {
        normalization.write(sample.image, into: output, height: height, width: width)
    }

    /// Assembles, on this thread, rank `rank`'s slice of the global batch `globalBatch` (dataset indices).
    public func assemble(_ globalBatch: [Int], epoch: Int, rank: Int = 0, worldSize: Int = 1) throws -> DetectionBatch {
        try assemble(globalBatch, positions: DistributedSampler.slice(count: globalBatch.count, rank: rank, worldSize: worldSize),
                     epoch: epoch)
    }

    /// Assembles, on this thread, the samples at `positions` of the global batch `globalBatch`, padded to the size of
    /// the WHOLE global batch (so a sample's input does not depend on how the batch is split among ranks or
    /// micro-batches).
    ///
    /// `workers` > 1 decodes and transforms the samples on that many threads at once (each sample by one thread, into
    /// its own slot: the same tensors for any count); the error of the first unusable sample in slice order is thrown.
    public func assemble(_ globalBatch: [Int], positions: Range<Int>, epoch: Int, workers: Int = 1) throws -> DetectionBatch {
        let (H, W) = paddedSize(globalBatch, epoch: epoch)
        let mine = Array(globalBatch[positions])
        let plane = 3 * H * W
        let buffer = UnsafeMutablePointer<Float>.allocate(capacity: max(1, mine.count * plane))
        defer { buffer.deallocate() }
        var results = [Result<(sample: DetectionSample, warning: String?), Error>?](repeating: nil, count: mine.count)
        let threads = max(1, min(workers, mine.count))
        results.withUnsafeMutableBufferPointer { slots in
            let output = UnsafeMutableRawPointer(buffer)
            DispatchQueue.concurrentPerform(iterations: threads) { t in
                for j in stride(from: t, to: mine.count, by: threads) {
                    slots[j] = Result {
                        let p = try prepare(mine[j], epoch: epoch)
                        write(p.sample, into: output.assumingMemoryBound(to: Float.self) + j * plane, height: H, width: W)
                        return p
                    }
                }
            }
        }
        let prepared = try results.map { try $0!.get() }
        return Self.batch(indices: mine, prepared: prepared, buffer: buffer, height: H, width: W)
    }

    static func batch(indices: [Int], prepared: [(sample: DetectionSample, warning: String?)], buffer: UnsafeMutablePointer<Float>,
                      height: Int, width: Int) -> DetectionBatch {
        let images = Tensor(uninitialized: [indices.count, 3, height, width])
        images.copyFromHost(UnsafeBufferPointer(start: buffer, count: indices.count * 3 * height * width))
        return DetectionBatch(images: images, imageIndices: indices,
                              validSizes: prepared.map { ($0.sample.image.height, $0.sample.image.width) },
                              scaleFactors: prepared.map { $0.sample.scaleFactor }, flipped: prepared.map { $0.sample.flipped },
                              boxes: prepared.map { $0.sample.boxes }, labels: prepared.map { $0.sample.labels },
                              ignoredBoxes: prepared.map { $0.sample.ignoredBoxes }, warnings: prepared.compactMap { $0.warning })
    }
}
