import Foundation
import LorsImage
import LorsNative
import LorsTensor

/// A real-image object-detection set in COCO format, made from Fashion-MNIST (`lors make-detection`).
///
/// Each canvas is `size`×`size` RGB: a grey background (a level in 0...95 plus Gaussian-like noise of σ = 3 levels),
/// then 1–6 Fashion-MNIST items, each resized (bilinear) to a square of side 12...min(200, size) px (log-uniform, so
/// COCO's small, medium and large area ranges all occur), placed fully inside the canvas and tinted with a random
/// colour (the item's grey value times a per-channel factor whose largest channel is 1). Item pixels above
/// `opacityThreshold` are opaque and replace what lies below; later items are drawn over earlier ones.
///
/// An annotation describes what is visible: `bbox` is the tight box `[x, y, w, h]` of the item's pixels that no
/// later item covers, `area` their count (so `area ≤ w·h`). An item with less than a quarter of its opaque pixels
/// visible is marked `iscrowd: 1`; an item with none visible gets no annotation. Train canvases take items from the
/// 60,000 training images, val canvases from the 10,000 test images.
///
/// Every draw comes from Philox (`RandomKey`) keyed by the seed, the split and the canvas index, so a canvas depends
/// on nothing else: the output is the same for any thread count, and PNG output is byte-identical between runs.
public enum DetectionSynthesis {
    /// Items per canvas.
    public static let itemCountRange = 1...6
    /// Smallest and largest item side in pixels (the largest is also capped at the canvas size).
    public static let minSide = 12
    public static let maxSide = 200
    /// Item pixels (0...255, after resizing) above this value are opaque; the rest are transparent.
    public static let opacityThreshold: UInt8 = 16
    /// Items with a smaller visible fraction of their opaque pixels are marked `iscrowd: 1`.
    public static let crowdVisibleFraction = 0.25
    /// Background: a grey level in `0..<backgroundLevels`, plus noise with this standard deviation (grey levels).
    public static let backgroundLevels = 96
    public static let noiseSigma: Float = 3
    /// COCO's area ranges: small < 32², medium 32²...96², large > 96² (by `area`).
    public static let smallArea = 32 * 32
    public static let largeArea = 96 * 96

    /// One item drawn on a canvas.
    public struct Item: Equatable, Sendable {
        /// Fashion-MNIST label (0...9); the COCO category id is `label + 1`.
        public var label: Int
        /// Index of the source image in its Fashion-MNIST split.
        public var sourceIndex: Int
        /// Top-left corner and side of the resized item on the canvas.
        public var x: Int, y: Int, side: Int
        /// Per-channel colour factors.
        public var tint: [Float]
        /// Opaque pixels of the item before occlusion.
        public var opaquePixels = 0
        /// Opaque pixels no later item covers (COCO `area`).
        public var visiblePixels = 0
        /// Tight box `[x, y, w, h]` of the visible pixels (all zero when none is visible).
        public var box = [0, 0, 0, 0]

        /// Less than `crowdVisibleFraction` of the item is visible.
        public var isCrowd: Bool { Double(visiblePixels) < crowdVisibleFraction * Double(opaquePixels) }
    }

    /// A rendered canvas: the image, every drawn item in drawing order, and which item owns each pixel.
    public struct Canvas: Sendable {
        public var image: ByteImage
        public var items: [Item]
        /// Per pixel (row-major), the index in `items` of the item seen there, or -1 for background.
        public var owner: [Int8]
    }

    /// Fashion-MNIST's split that feeds `split` ("train" → train, "val" → test).
    public static func sourceSplit(of split: String) -> String { split == "train" ? "train" : "test" }

    /// Renders canvas `index` of `split` from `source` (28×28 grey items). A pure function of its arguments.
    public static func render(index: Int, split: String, seed: UInt64, size: Int, source: ImageDataset) -> Canvas {
        precondition(source.channels == 1 && source.count > 0, "DetectionSynthesis: source must be grey images")
        var draws = Draws(RandomKey(seed: seed, purpose: "make-detection.\(split)", stream: (UInt64(index), 0)))
        let noiseKey = RandomKey(seed: seed, purpose: "make-detection.\(split).noise", stream: (UInt64(index), 0))
        let pixelCount = size * size
        var pixels = [UInt8](repeating: 0, count: pixelCount * 3)
        let level = Float(draws.integer(below: backgroundLevels))
        // Background noise: the sum of four uniforms (Irwin–Hall), scaled to unit variance.
        let unit = Float(3).squareRoot() / 16_777_216
        for p in 0..<pixelCount {
            let b = noiseKey.block(UInt64(p))
            let sum = Float((b.0 >> 8) + (b.1 >> 8) + (b.2 >> 8) + (b.3 >> 8))
            let value = level + noiseSigma * (sum - 2 * 16_777_216) * unit
            let byte = UInt8(max(0, min(255, value.rounded())))
            pixels[3 * p] = byte; pixels[3 * p + 1] = byte; pixels[3 * p + 2] = byte
        }

        var owner = [Int8](repeating: -1, count: pixelCount)
        var items: [Item] = []
        let count = itemCountRange.lowerBound + draws.integer(below: itemCountRange.count)
        let largest = min(maxSide, size)
        let itemSize = source.height * source.width
        for k in 0..<count {
            let sourceIndex = draws.integer(below: source.count)
            let side = Int((Double(minSide) * exp(draws.uniform() * log(Double(largest) / Double(minSide)))).rounded())
            let clampedSide = max(minSide, min(largest, side))
            let x = draws.integer(below: size - clampedSide + 1)
            let y = draws.integer(below: size - clampedSide + 1)
            var tint = (0..<3).map { _ in Float(0.35 + 0.65 * draws.uniform()) }
            let brightest = tint.max()!
            tint = tint.map { $0 / brightest }
            var item = Item(label: Int(source.labels[sourceIndex]), sourceIndex: sourceIndex, x: x, y: y,
                            side: clampedSide, tint: tint)
            let start = sourceIndex * itemSize
            let resized = resizeBilinear(Array(source.pixels[start..<(start + itemSize)]), width: source.width,
                                         height: source.height, to: clampedSide)
            for row in 0..<clampedSide {
                for column in 0..<clampedSide {
                    let v = resized[row * clampedSide + column]
                    guard v > opacityThreshold else { continue }
                    item.opaquePixels += 1
                    let p = (y + row) * size + (x + column)
                    owner[p] = Int8(k)
                    for c in 0..<3 { pixels[3 * p + c] = UInt8(min(255, (Float(v) * tint[c]).rounded())) }
                }
            }
            items.append(item)
        }

        // Visible pixels and tight boxes after all items are drawn.
        var bounds = [(minX: Int, minY: Int, maxX: Int, maxY: Int)](repeating: (size, size, -1, -1), count: count)
        for row in 0..<size {
            for column in 0..<size {
                let k = Int(owner[row * size + column])
                guard k >= 0 else { continue }
                items[k].visiblePixels += 1
                bounds[k].minX = min(bounds[k].minX, column); bounds[k].maxX = max(bounds[k].maxX, column)
                bounds[k].minY = min(bounds[k].minY, row); bounds[k].maxY = max(bounds[k].maxY, row)
            }
        }
        for k in 0..<count where items[k].visiblePixels > 0 {
            let b = bounds[k]
            items[k].box = [b.minX, b.minY, b.maxX - b.minX + 1, b.maxY - b.minY + 1]
        }
        return Canvas(image: ByteImage(width: size, height: size, channels: 3, pixels: pixels), items: items,
                      owner: owner)
    }

    /// Bilinear resize of a grey image to `side`×`side` (pixel centres aligned, `align_corners=False`; edges clamped).
    public static func resizeBilinear(_ pixels: [UInt8], width: Int, height: Int, to side: Int) -> [UInt8] {
        func taps(_ length: Int) -> [(Int, Int, Float)] {
            let scale = Float(length) / Float(side)
            return (0..<side).map { i in
                let s = max(0, min(Float(length - 1), (Float(i) + 0.5) * scale - 0.5))
                let i0 = Int(s)
                return (i0, min(i0 + 1, length - 1), s - Float(i0))
            }
        }
        let rows = taps(height), columns = taps(width)
        var out = [UInt8](repeating: 0, count: side * side)
        for (i, (y0, y1, wy)) in rows.enumerated() {
            for (j, (x0, x1, wx)) in columns.enumerated() {
                let top = Float(pixels[y0 * width + x0]) * (1 - wx) + Float(pixels[y0 * width + x1]) * wx
                let bottom = Float(pixels[y1 * width + x0]) * (1 - wx) + Float(pixels[y1 * width + x1]) * wx
                out[i * side + j] = UInt8(min(255, (top * (1 - wy) + bottom * wy).rounded()))
            }
        }
        return out
    }

    /// Sequential 32-bit words of one Philox stream.
    struct Draws {
        let key: RandomKey
        var next = 0

        init(_ key: RandomKey) { self.key = key }

        mutating func word() -> UInt32 {
            let b = key.block(UInt64(next >> 2))
            defer { next += 1 }
            switch next & 3 { case 0: return b.0; case 1: return b.1; case 2: return b.2; default: return b.3 }
        }

        /// Uniform in [0, 1).
        mutating func uniform() -> Double { Double(word()) / 4_294_967_296 }

        /// Uniform integer in 0..<n (multiply-shift; bias below 2⁻³² · n).
        mutating func integer(below n: Int) -> Int { Int((UInt64(word()) * UInt64(n)) >> 32) }
    }
}

extension DetectionSynthesis {
    /// What `generate` makes.
    public struct Options: Sendable {
        /// Output directory: `train/`, `val/` and `annotations/` are created under it.
        public var outputDirectory: String
        public var trainImages = 6000
        public var valImages = 1000
        /// Canvas side in pixels.
        public var size = 256
        public var seed: UInt64 = 0
        public var format: ImageFormat = .png
        /// JPEG quality (1...100) with `format == .jpeg`.
        public var jpegQuality = 90
        /// Directory of the Fashion-MNIST IDX files.
        public var fashionMNISTRoot = "/usr/share/datasets/fashion-mnist"

        public init(outputDirectory: String) { self.outputDirectory = outputDirectory }
    }

    /// Counts of one split.
    public struct SplitSummary: Equatable, Sendable {
        public var split: String
        public var images = 0
        public var annotations = 0
        /// Annotations by COCO area range.
        public var small = 0, medium = 0, large = 0
        /// Annotations marked `iscrowd: 1`.
        public var crowd = 0
        /// Drawn items with no visible pixel (no annotation).
        public var hiddenItems = 0
        public var seconds = 0.0
        /// The annotation file.
        public var annotationFile = ""
    }

    /// The COCO category list: the 10 Fashion-MNIST classes, ids 1...10.
    public static var categories: [JSONValue] {
        FashionMNIST.classNames.enumerated().map { index, name in
            .object(["id": .int(index + 1), "name": .string(name), "supercategory": "fashion"])
        }
    }

    /// Writes `train` and `val`: the images under `DIR/train|val/` (file names `000000000001.png`, image ids from 1),
    /// then `DIR/annotations/instances_{train,val}.json`. Every file is written to a temporary name and renamed, and a
    /// split's annotation file comes after its images, so a split whose JSON exists is complete. Canvases are made
    /// in parallel on `Threading.threads` threads; the result does not depend on the count.
    public static func generate(_ options: Options, log: (String) -> Void = { _ in }) throws -> [SplitSummary] {
        guard options.size >= 32 else { throw DataError(.badFormat(detail: "--size must be at least 32, got \(options.size)"), file: options.outputDirectory) }
        let fm = FileManager.default
        let annotationDirectory = (options.outputDirectory as NSString).appendingPathComponent("annotations")
        var summaries: [SplitSummary] = []
        for (split, count) in [("train", options.trainImages), ("val", options.valImages)] where count > 0 {
            let start = Date()
            let source = try FashionMNIST.load(root: options.fashionMNISTRoot, split: sourceSplit(of: split))
            let imageDirectory = (options.outputDirectory as NSString).appendingPathComponent(split)
            do {
                try fm.createDirectory(atPath: imageDirectory, withIntermediateDirectories: true)
                try fm.createDirectory(atPath: annotationDirectory, withIntermediateDirectories: true)
            } catch {
                throw DataError(.badFormat(detail: "cannot create directory (\(error.localizedDescription))"), file: imageDirectory)
            }
            var records = [[Item]](repeating: [], count: count)
            var failure: Error?
            let lock = NSLock()
            records.withUnsafeMutableBufferPointer { results in
                parallelFor(count, grain: 1) { first, end in
                    for index in first..<end {
                        if lock.withLock({ failure != nil }) { return }
                        let canvas = render(index: index, split: split, seed: options.seed, size: options.size, source: source)
                        let path = (imageDirectory as NSString).appendingPathComponent(fileName(imageID: index + 1, format: options.format))
                        do {
                            try canvas.image.write(to: path, format: options.format, quality: options.jpegQuality, fastPNG: true)
                        } catch let error as ImageError {
                            lock.withLock { if failure == nil { failure = error.withImageID(index + 1) } }
                            return
                        } catch {
                            lock.withLock { if failure == nil { failure = error } }
                            return
                        }
                        results[index] = canvas.items
                    }
                }
            }
            if let failure { throw failure }

            var summary = SplitSummary(split: split)
            let json = cocoJSON(split: split, items: records, options: options, summary: &summary)
            summary.annotationFile = (annotationDirectory as NSString).appendingPathComponent("instances_\(split).json")
            try AtomicFile.write(Array(json.utf8), to: summary.annotationFile)
            summary.seconds = Date().timeIntervalSince(start)
            log("make-detection: \(split): \(count) images in \(String(format: "%.1f", summary.seconds)) s")
            summaries.append(summary)
        }
        return summaries
    }

    /// `000000000042.png`: the image id in 12 digits, as COCO names its files.
    public static func fileName(imageID: Int, format: ImageFormat) -> String {
        let digits = String(imageID)
        return String(repeating: "0", count: max(0, 12 - digits.count)) + digits + "." + format.fileExtension
    }

    /// The annotation file of one split (compact JSON), filling in the counts of `summary`.
    static func cocoJSON(split: String, items: [[Item]], options: Options, summary: inout SplitSummary) -> String {
        var images: [JSONValue] = []
        var annotations: [JSONValue] = []
        images.reserveCapacity(items.count)
        for (index, canvasItems) in items.enumerated() {
            let imageID = index + 1
            images.append(.object(["id": .int(imageID), "file_name": .string(fileName(imageID: imageID, format: options.format)),
                                   "width": .int(options.size), "height": .int(options.size)]))
            for item in canvasItems {
                guard item.visiblePixels > 0 else { summary.hiddenItems += 1; continue }
                let crowd = item.isCrowd
                annotations.append(.object(["id": .int(annotations.count + 1), "image_id": .int(imageID),
                                            "category_id": .int(item.label + 1), "bbox": .array(item.box.map { .int($0) }),
                                            "area": .int(item.visiblePixels), "iscrowd": .int(crowd ? 1 : 0)]))
                if item.visiblePixels < smallArea { summary.small += 1 }
                else if item.visiblePixels > largeArea { summary.large += 1 }
                else { summary.medium += 1 }
                if crowd { summary.crowd += 1 }
            }
        }
        summary.images = items.count
        summary.annotations = annotations.count
        let info: JSONObject = [
            "description": .string("Fashion-MNIST items on noisy canvases (lors make-detection)"),
            "version": "1.0",
            "split": .string(split),
            "source": .string("Fashion-MNIST \(sourceSplit(of: split)) images"),
            "seed": .int(Int(truncatingIfNeeded: options.seed)),
            "size": .int(options.size),
            "format": .string(options.format.rawValue),
        ]
        let root: JSONObject = ["info": .object(info), "licenses": .array([]), "images": .array(images),
                                "annotations": .array(annotations), "categories": .array(categories)]
        return root.text() + "\n"
    }
}
