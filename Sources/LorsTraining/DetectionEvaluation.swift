import Foundation
import LorsData
import LorsDetection
import LorsDistributed
import LorsNative

/// One rank's detections of its share of the evaluation images: per image (an index into the evaluation
/// `COCODetectionIndex`), its detections in the order the detector produced them, each a contiguous label, a box
/// `[x1, y1, x2, y2]` in the ORIGINAL image's pixels and a score.
///
/// `encoded()` is the compact binary form that travels to rank 0 (little-endian: the image count, the detection
/// count, then the arrays as stored).
public struct DetectionResults: Sendable, Equatable {
    /// Image indices, in the order they were added.
    public private(set) var images: [Int32] = []
    /// Image `images[k]` has detections `offsets[k]..<offsets[k + 1]`.
    public private(set) var offsets: [Int32] = [0]
    public private(set) var labels: [Int32] = []
    /// `[x1, y1, x2, y2]` per detection.
    public private(set) var boxes: [Float] = []
    public private(set) var scores: [Float] = []

    public init() {}

    /// The number of images added (with or without detections).
    public var imageCount: Int { images.count }
    /// The number of detections over all images.
    public var detectionCount: Int { labels.count }

    /// Adds image `image`'s detections: `labels.count` detections, `boxes` four floats `[x1, y1, x2, y2]` each (original
    /// pixels, see `DetectionTransforms.originalBoxes`), one score each. An image without detections is still added:
    /// it was evaluated.
    public mutating func add(image: Int, labels: [Int32], boxes: [Float], scores: [Float]) {
        precondition(boxes.count == 4 * labels.count && scores.count == labels.count,
                     "image \(image): \(labels.count) labels need \(4 * labels.count) box values and \(labels.count) scores, got \(boxes.count) and \(scores.count)")
        precondition(image >= 0 && image <= Int(Int32.max), "image index \(image) out of range")
        images.append(Int32(image))
        self.labels += labels
        self.boxes += boxes
        self.scores += scores
        offsets.append(Int32(self.labels.count))
    }

    /// Detections `range` of the `k`-th image added.
    public func detections(ofEntry k: Int) -> Range<Int> { Int(offsets[k])..<Int(offsets[k + 1]) }

    private static let magic = Array("LORSDETS1".utf8)

    /// The binary form (see the type's documentation).
    public func encoded() -> [UInt8] {
        var bytes = Self.magic
        func append<T: BitwiseCopyable>(_ values: [T]) { values.withUnsafeBytes { bytes.append(contentsOf: $0) } }
        append([Int64(images.count).littleEndian, Int64(labels.count).littleEndian])
        append(images)
        append(offsets)
        append(labels)
        append(boxes)
        append(scores)
        return bytes
    }

    /// Reads `encoded()` bytes; `source` (e.g. "rank 2") names them in errors.
    public init(encoded bytes: [UInt8], source: String) throws {
        guard bytes.starts(with: Self.magic) else { throw COCOError("detections from \(source): wrong header") }
        var offset = Self.magic.count
        func read<T: BitwiseCopyable>(_ count: Int, _: T.Type) throws -> [T] {
            let size = count * MemoryLayout<T>.stride
            guard count >= 0, size <= bytes.count - offset else {
                throw COCOError("detections from \(source): truncated at byte \(offset) of \(bytes.count)")
            }
            let values = [T](unsafeUninitializedCapacity: count) { buffer, initialized in
                bytes.withUnsafeBytes { source in
                    UnsafeMutableRawBufferPointer(buffer).copyMemory(from: UnsafeRawBufferPointer(rebasing: source[offset..<offset + size]))
                }
                initialized = count
            }
            offset += size
            return values
        }
        let counts = try read(2, Int64.self).map { Int(Int64(littleEndian: $0)) }
        let (n, d) = (counts[0], counts[1])
        guard n >= 0, d >= 0, n <= bytes.count, d <= bytes.count else { throw COCOError("detections from \(source): bad counts \(n), \(d)") }
        images = try read(n, Int32.self)
        offsets = try read(n + 1, Int32.self)
        labels = try read(d, Int32.self)
        boxes = try read(4 * d, Float.self)
        scores = try read(d, Float.self)
        guard offset == bytes.count, offsets.first == 0, offsets.last.map(Int.init) == d,
              zip(offsets, offsets.dropFirst()).allSatisfy({ $0 <= $1 }) else {
            throw COCOError("detections from \(source): inconsistent offsets or trailing bytes")
        }
    }
}

/// COCO box evaluation of the detections of all ranks, as mmdetection's `CocoMetric` computes it.
///
/// Collective: every rank calls `evaluate` with its own `DetectionResults`. The results are gathered to rank 0
/// (`gather(bytes:root:)`), ordered by COCO image id and, within an image, in the order its detections were produced,
/// so the results file and the numbers do not depend on the world size or the evaluation batch size. Rank 0 maps
/// labels to category ids, writes the COCO results JSON (one array of `{"image_id", "category_id", "bbox": [x, y, w, h],
/// "score"}`, the box as mmdetection's `xyxy2xywh` gives it: float32 corners as doubles, w = x2 − x1 and h = y2 − y1
/// in double) to a temporary file renamed to the path given, and evaluates it with `COCOEvaluator` against the ground
/// truth file (read once, on rank 0 only), restricted to the images the ranks submitted (pycocotools'
/// `params.imgIds`). The numbers equal `lors eval-coco --json --max-dets ...` on that file (the JSON numbers read back
/// to the same doubles). Rank 0 broadcasts them, so every rank returns the same `Metrics`; an error on rank 0 (the
/// ground truth, the file, a non-finite or inverted box, an image submitted twice) is thrown on every rank.
public final class DetectionEvaluation {
    /// The evaluation images (a test-mode index: every image of the file).
    public let index: COCODetectionIndex
    /// The COCO instances file the index was read from: the ground truth of the evaluation.
    public let groundTruthPath: String
    /// pycocotools' `maxDets`, sorted (three values: AP at the last, AR at each).
    public let maxDetections: [Int]
    /// Rank 0's ground truth, read at the first evaluation.
    private var groundTruth: COCOGroundTruth?

    /// `maxDetections` defaults to mmdetection's `proposal_nums` (100, 300, 1000); with at most 100 detections per
    /// image its AP equals pycocotools' default (1, 10, 100).
    public init(index: COCODetectionIndex, groundTruthPath: String,
                maxDetections: [Int] = COCOEvaluator.mmdetectionMaxDetections) throws {
        let sorted = try COCOEvaluator.checkedMaxDetections(maxDetections)
        guard sorted.count == 3 else { throw COCOError("the COCO summary needs three maxDets, got \(maxDetections)") }
        self.index = index
        self.groundTruthPath = groundTruthPath
        self.maxDetections = sorted
    }

    /// `WORK_DIR/eval/bbox_step_<8 digits>.json`: where the detector keeps the results of the evaluation after `step`.
    public static func resultsPath(workDirectory: String, step: Int) -> String {
        let digits = String(step)
        let name = "bbox_step_" + String(repeating: "0", count: max(0, 8 - digits.count)) + digits + ".json"
        return ((workDirectory as NSString).appendingPathComponent("eval") as NSString).appendingPathComponent(name)
    }

    /// The metric names, in the order of the summary: mmdetection's `bbox_mAP`, `bbox_mAP_50`, `bbox_mAP_75`,
    /// `bbox_mAP_s`, `bbox_mAP_m`, `bbox_mAP_l`, then the recalls `bbox_mAR_<m>` at each maxDets m and `bbox_mAR_s`,
    /// `bbox_mAR_m`, `bbox_mAR_l` at the largest.
    public var metricNames: [String] {
        ["bbox_mAP", "bbox_mAP_50", "bbox_mAP_75", "bbox_mAP_s", "bbox_mAP_m", "bbox_mAP_l"]
            + maxDetections.map { "bbox_mAR_\($0)" } + ["bbox_mAR_s", "bbox_mAR_m", "bbox_mAR_l"]
    }

    /// The metric that picks the best checkpoint.
    public static let primaryMetric = "bbox_mAP"

    /// Gathers every rank's `results`, writes the results file at `resultsPath` and evaluates it (see the type's
    /// documentation). Collective.
    public func evaluate(_ results: DetectionResults, communicator: any Communicator, resultsPath: String) throws -> Metrics {
        let parts = try communicator.gather(bytes: results.encoded(), root: 0)
        var reply: [UInt8] = []
        if communicator.rank == 0 {
            do {
                let decoded = try parts.enumerated().map { try DetectionResults(encoded: $1, source: "rank \($0)") }
                let (detections, images) = try merge(decoded)
                try Self.writeResults(detections, to: resultsPath)
                let values = try summarize(detections, images: images, resultsPath: resultsPath)
                reply = [1]
                withUnsafeBytes(of: Int64(images.count).littleEndian) { reply.append(contentsOf: $0) }
                for value in values { withUnsafeBytes(of: value.bitPattern.littleEndian) { reply.append(contentsOf: $0) } }
            } catch {
                reply = [0] + Array("\(error)".utf8)
            }
        }
        let received = try communicator.broadcast(bytes: reply, root: 0)
        guard received.first == 1 else {
            throw COCOError(received.isEmpty ? "\(resultsPath): rank 0 sent no evaluation" : String(decoding: received.dropFirst(), as: UTF8.self))
        }
        let names = metricNames
        guard received.count == 1 + 8 * (1 + names.count) else {
            throw COCOError("\(resultsPath): rank 0 sent \(received.count) bytes of metrics, expected \(1 + 8 * (1 + names.count))")
        }
        func word(_ k: Int) -> UInt64 {
            var value: UInt64 = 0
            withUnsafeMutableBytes(of: &value) { $0.copyBytes(from: received[(1 + 8 * k)..<(9 + 8 * k)]) }
            return UInt64(littleEndian: value)
        }
        let samples = Int(Int64(bitPattern: word(0)))
        let metrics = names.enumerated().map { Metric($1, Double(bitPattern: word($0 + 1))) }
        return Metrics(metrics, samples: samples, primary: Self.primaryMetric)
    }

    /// Every rank's detections in COCO form, ordered by image id and then as produced, and the COCO ids of the images
    /// submitted (sorted). Throws on an image index outside the index, an image submitted twice, a label outside
    /// `0..<classCount`, a non-finite value or a box with x2 < x1 or y2 < y1, naming the image id and the rank.
    public func merge(_ parts: [DetectionResults]) throws -> (detections: [COCODetection], imageIDs: [Int]) {
        var entries: [(imageID: Int, rank: Int, entry: Int)] = []
        for (rank, part) in parts.enumerated() {
            for (k, image) in part.images.enumerated() {
                guard (0..<index.count).contains(Int(image)) else {
                    throw COCOError("rank \(rank) submitted detections of image \(image), but the evaluation index has \(index.count) images")
                }
                entries.append((index.imageIDs[Int(image)], rank, k))
            }
        }
        entries.sort { ($0.imageID, $0.rank, $0.entry) < ($1.imageID, $1.rank, $1.entry) }
        for k in entries.indices.dropFirst() where entries[k].imageID == entries[k - 1].imageID {
            throw COCOError("image id \(entries[k].imageID) was submitted twice (rank \(entries[k - 1].rank) and rank \(entries[k].rank)); each image is evaluated once")
        }
        var detections: [COCODetection] = []
        detections.reserveCapacity(parts.reduce(0) { $0 + $1.detectionCount })
        for (imageID, rank, k) in entries {
            let part = parts[rank]
            for d in part.detections(ofEntry: k) {
                let label = Int(part.labels[d])
                guard (0..<index.classCount).contains(label) else {
                    throw COCOError("rank \(rank), image id \(imageID): label \(label) is not one of the \(index.classCount) classes")
                }
                let x1 = part.boxes[4 * d], y1 = part.boxes[4 * d + 1], x2 = part.boxes[4 * d + 2], y2 = part.boxes[4 * d + 3]
                let score = part.scores[d]
                guard x1.isFinite, y1.isFinite, x2.isFinite, y2.isFinite, score.isFinite else {
                    throw COCOError("rank \(rank), image id \(imageID): a non-finite detection (box [\(x1), \(y1), \(x2), \(y2)], score \(score))")
                }
                guard x2 >= x1, y2 >= y1 else {
                    throw COCOError("rank \(rank), image id \(imageID): the box [\(x1), \(y1), \(x2), \(y2)] has x2 < x1 or y2 < y1")
                }
                let x = Double(x1), y = Double(y1)
                detections.append(COCODetection(imageID: imageID, categoryID: index.categoryIDs[label],
                                                box: COCOBox(x: x, y: y, width: Double(x2) - x, height: Double(y2) - y),
                                                score: Double(score)))
            }
        }
        return (detections, entries.map(\.imageID))
    }

    /// The results JSON of `detections`, one compact array, doubles as the shortest text that reads back to them.
    public static func resultsJSON(_ detections: [COCODetection]) -> [UInt8] {
        var text = "["
        text.reserveCapacity(96 * detections.count + 2)
        for (k, detection) in detections.enumerated() {
            if k > 0 { text += "," }
            text += "{\"image_id\":\(detection.imageID),\"category_id\":\(detection.categoryID),\"bbox\":["
            text += JSONValue.number(detection.box.x) + "," + JSONValue.number(detection.box.y) + ","
            text += JSONValue.number(detection.box.width) + "," + JSONValue.number(detection.box.height)
            text += "],\"score\":" + JSONValue.number(detection.score) + "}"
        }
        text += "]\n"
        return Array(text.utf8)
    }

    /// Writes `resultsJSON(detections)` to a temporary file beside `path` and renames it to `path` (creating the
    /// directory).
    public static func writeResults(_ detections: [COCODetection], to path: String) throws {
        let directory = (path as NSString).deletingLastPathComponent
        do {
            if !directory.isEmpty { try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true) }
            try Data(resultsJSON(detections)).write(to: URL(fileURLWithPath: path), options: .atomic)
        } catch {
            throw COCOError("\(path): cannot write the detection results (\(error.localizedDescription))")
        }
    }

    /// Rank 0: the summary values of `detections` against the ground truth of `imageIDs`, in `metricNames` order.
    private func summarize(_ detections: [COCODetection], images imageIDs: [Int], resultsPath: String) throws -> [Double] {
        let truth = try loadGroundTruth()
        // The submitted images are index images, hence ground-truth images: the same count means the same set.
        let submitted = Set(imageIDs)
        let evaluated: COCOGroundTruth
        if submitted.count == Set(truth.imageIDs).count {
            evaluated = truth
        } else {
            evaluated = try COCOGroundTruth(imageIDs: truth.imageIDs.filter(submitted.contains), categories: truth.categories,
                                            annotations: truth.annotations.filter { submitted.contains($0.imageID) },
                                            source: groundTruthPath)
        }
        try COCODetections.check(detections, source: resultsPath, groundTruth: evaluated, groundTruthSource: groundTruthPath)
        let evaluation = try COCOEvaluator.evaluate(groundTruth: evaluated, detections: detections, maxDetections: maxDetections)
        let summary = try COCOSummary(evaluation)
        guard summary.entries.count == metricNames.count else {
            throw COCOError("the COCO summary has \(summary.entries.count) numbers, expected \(metricNames.count)")
        }
        return summary.entries.map(\.value)
    }

    /// Rank 0: the ground truth, read once and checked against the index (the same categories; every index image in it).
    private func loadGroundTruth() throws -> COCOGroundTruth {
        if let groundTruth { return groundTruth }
        let truth = try COCOGroundTruth.load(path: groundTruthPath)
        let categoryIDs = truth.categories.map(\.id).sorted()
        guard categoryIDs == index.categoryIDs else {
            throw COCOError("\(groundTruthPath): its category ids \(categoryIDs) are not those of the evaluation index \(index.categoryIDs)")
        }
        let images = Set(truth.imageIDs)
        if let missing = index.imageIDs.first(where: { !images.contains($0) }) {
            throw COCOError("\(groundTruthPath): image id \(missing) of the evaluation index is not among its images")
        }
        groundTruth = truth
        return truth
    }
}

public extension DetectionTransforms {
    /// Maps boxes `[x1, y1, x2, y2]` predicted on a transformed image back to the original image, the inverse of the
    /// test pipeline (and of `standard`'s flip and resize; not of a crop): divide by the last resize's scale factors
    /// (as mmdetection's `bboxes / scale_factor`, in float32), un-flip at the original width (`x1 = w − x2`,
    /// `x2 = w − x1`) when the sample was flipped, clip to the original `width`×`height`.
    static func originalBoxes(_ boxes: [Float], scaleFactor: (width: Double, height: Double), flipped: Bool,
                              width: Int, height: Int) -> [Float] {
        precondition(boxes.count % 4 == 0, "boxes must be xyxy quadruples")
        let sw = Float(scaleFactor.width), sh = Float(scaleFactor.height), W = Float(width), H = Float(height)
        var out = boxes
        for i in stride(from: 0, to: boxes.count, by: 4) {
            var x1 = boxes[i] / sw, x2 = boxes[i + 2] / sw
            if flipped { (x1, x2) = (W - x2, W - x1) }
            out[i] = min(max(x1, 0), W)
            out[i + 1] = min(max(boxes[i + 1] / sh, 0), H)
            out[i + 2] = min(max(x2, 0), W)
            out[i + 3] = min(max(boxes[i + 3] / sh, 0), H)
        }
        return out
    }
}

public extension DetectionBatch {
    /// `boxes` predicted on sample `sample` of this batch (its transformed image) in the original image's pixels, the
    /// original size read from `index` (the index the batch was assembled from).
    func originalBoxes(_ boxes: [Float], sample: Int, index: COCODetectionIndex) -> [Float] {
        let image = imageIndices[sample]
        return DetectionTransforms.originalBoxes(boxes, scaleFactor: scaleFactors[sample], flipped: flipped[sample],
                                                 width: Int(index.widths[image]), height: Int(index.heights[image]))
    }
}
