import Foundation
import XCTest
@testable import LorsCLI
import LorsData
import LorsDetection
import LorsDistributed
import LorsImage
import LorsTestSupport
import LorsTraining

/// Small `lors make-detection` sets and detections made from their ground truth, shared by the detection tests.
enum DetectionEvaluationSupport {
    static let fashionMNIST = "/usr/share/datasets/fashion-mnist"

    /// A fresh temporary directory.
    static func temporaryDirectory(_ label: String) throws -> String {
        let path = (NSTemporaryDirectory() as NSString).appendingPathComponent("lors-det-\(label)-\(UUID().uuidString)")
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    /// Writes a `lors make-detection` set under `directory` (val only unless `train` > 0) and returns the val
    /// annotation file.
    @discardableResult
    static func makeSet(in directory: String, train: Int = 0, val: Int, size: Int = 96, seed: UInt64 = 5) throws -> String {
        var options = DetectionSynthesis.Options(outputDirectory: directory)
        options.trainImages = train
        options.valImages = val
        options.size = size
        options.seed = seed
        options.fashionMNISTRoot = fashionMNIST
        _ = try DetectionSynthesis.generate(options)
        return (directory as NSString).appendingPathComponent("annotations/instances_val.json")
    }

    /// A deterministic number in [0, 1) from integers.
    static func unit(_ values: Int...) -> Float {
        var h: UInt64 = 0x9E37_79B9_7F4A_7C15
        for v in values {
            h ^= UInt64(bitPattern: Int64(v)) &+ 0x9E37_79B9_7F4A_7C15 &+ (h << 6) &+ (h >> 2)
            h = (h ^ (h >> 31)) &* 0xBF58_476D_1CE4_E5B9
        }
        return Float(h >> 40) / Float(1 << 24)
    }

    /// Detections of dataset image `image` made from its ground truth: every box jittered by up to ±15% of its size
    /// (some with the wrong label), one missed in five, a false positive per image, scores from a few levels (ties).
    static func detections(of image: Int, index: COCODetectionIndex) -> (labels: [Int32], boxes: [Float], scores: [Float]) {
        let truth = Array(index.boxes(image)), truthLabels = Array(index.labels(image))
        let W = Float(index.widths[image]), H = Float(index.heights[image])
        var labels: [Int32] = [], boxes: [Float] = [], scores: [Float] = []
        for k in truthLabels.indices {
            if unit(image, k, 0) < 0.2 { continue }
            let x1 = truth[4 * k], y1 = truth[4 * k + 1], x2 = truth[4 * k + 2], y2 = truth[4 * k + 3]
            let w = x2 - x1, h = y2 - y1
            func jitter(_ v: Float, _ size: Float, _ salt: Int) -> Float { v + 0.3 * size * (unit(image, k, salt) - 0.5) }
            let bx1 = min(max(jitter(x1, w, 1), 0), W), by1 = min(max(jitter(y1, h, 2), 0), H)
            let bx2 = min(max(jitter(x2, w, 3), bx1), W), by2 = min(max(jitter(y2, h, 4), by1), H)
            let wrong = unit(image, k, 5) < 0.1
            labels.append(wrong ? (truthLabels[k] + 1) % Int32(index.classCount) : truthLabels[k])
            boxes += [bx1, by1, bx2, by2]
            scores.append(Float(Int(unit(image, k, 6) * 8) + 1) / 8)
        }
        let fx = unit(image, 99, 1) * (W - 10), fy = unit(image, 99, 2) * (H - 10)
        labels.append(Int32(Int(unit(image, 99, 3) * Float(index.classCount))))
        boxes += [fx, fy, min(W, fx + 10 + 20 * unit(image, 99, 4)), min(H, fy + 10 + 20 * unit(image, 99, 5))]
        scores.append(0.25)
        return (labels, boxes, scores)
    }

    /// One rank's results as the detector's evaluation loop makes them: its contiguous share of every global batch of
    /// `batchSize` images, in batch order.
    static func results(index: COCODetectionIndex, rank: Int, worldSize: Int, batchSize: Int) -> DetectionResults {
        var results = DetectionResults()
        for batch in DistributedSampler.evaluationBatches(count: index.count, batchSize: batchSize) {
            let share = DistributedSampler.evaluationRange(datasetSize: batch.count, rank: rank, worldSize: worldSize)
            for image in (batch.lowerBound + share.lowerBound)..<(batch.lowerBound + share.upperBound) {
                let d = detections(of: image, index: index)
                results.add(image: image, labels: d.labels, boxes: d.boxes, scores: d.scores)
            }
        }
        return results
    }

    /// The numbers `lors eval-coco --json` prints for a results file.
    static func evalCOCO(gt: String, dt: String, maxDets: [Int]) throws -> [String: Double] {
        let arguments = ["eval-coco", "--gt", gt, "--dt", dt, "--json", "--max-dets", maxDets.map(String.init).joined(separator: ",")]
        let command = try XCTUnwrap(try LorsCommand.parseAsRoot(arguments) as? EvalCOCOCommand)
        // A flat object of numbers; each read with Swift's correctly rounded `Double(_:)` (Foundation's JSON reader may
        // be off by an ulp).
        let text = try command.output().trimmingCharacters(in: .whitespacesAndNewlines)
        XCTAssertTrue(text.hasPrefix("{") && text.hasSuffix("}"), text)
        var values: [String: Double] = [:]
        for member in text.dropFirst().dropLast().split(separator: ",") {
            let parts = member.split(separator: ":")
            XCTAssertEqual(parts.count, 2, "\(member)")
            values[parts[0].trimmingCharacters(in: CharacterSet(charactersIn: "\""))] = try XCTUnwrap(Double(String(parts[1])), "\(member)")
        }
        return values
    }

    /// eval-coco's keys in summary order.
    static func evalCOCOKeys(_ maxDets: [Int]) -> [String] {
        let ar = maxDets == COCOEvaluator.standardMaxDetections ? maxDets.map { "AR\($0)" } : maxDets.map { "AR@\($0)" }
        return ["AP", "AP50", "AP75", "APs", "APm", "APl"] + ar + ["ARs", "ARm", "ARl"]
    }

    static func bits(_ metrics: Metrics) -> [UInt64] { metrics.values.map(\.value.bitPattern) }
}

/// `COCODetectionIndex.load(path:options:communicator:)`: one rank parses, the others receive the bytes.
final class DetectionIndexLoadTests: XCTestCase {
    nonisolated(unsafe) static var directory = ""
    nonisolated(unsafe) static var valFile = ""

    override class func setUp() {
        super.setUp()
        do {
            directory = try DetectionEvaluationSupport.temporaryDirectory("index")
            valFile = try DetectionEvaluationSupport.makeSet(in: directory, train: 12, val: 10)
        } catch {
            XCTFail("cannot make the detection set: \(error)")
        }
    }

    override class func tearDown() {
        try? FileManager.default.removeItem(atPath: directory)
        super.tearDown()
    }

    func testEveryRankGetsTheIndexOfADirectLoad() throws {
        let trainFile = (Self.directory as NSString).appendingPathComponent("annotations/instances_train.json")
        for (file, options) in [(Self.valFile, COCODetectionIndex.Options.test), (trainFile, .training)] {
            let direct = try COCODetectionIndex(path: file, options: options)
            XCTAssertGreaterThan(direct.counts.boxes, 0)
            for size in 1...3 {
                // Ranks other than 0 are given a path that does not exist: they never open the file.
                let indexes = try SimulatedWorld(size: size).run { communicator in
                    try COCODetectionIndex.load(path: communicator.rank == 0 ? file : "/nonexistent/instances.json",
                                                options: options, communicator: communicator)
                }
                XCTAssertEqual(indexes.count, size)
                for (rank, index) in indexes.enumerated() {
                    XCTAssertEqual(index, direct, "\(file) on rank \(rank) of \(size)")
                }
            }
        }
    }

    func testMalformedJSONFailsOnEveryRankNamingTheFile() throws {
        let file = (Self.directory as NSString).appendingPathComponent("broken.json")
        try Data("{\"images\": [\n  {\"id\": 1,, \"width\": 3}\n]}".utf8).write(to: URL(fileURLWithPath: file))
        var expected = ""
        XCTAssertThrowsError(try COCODetectionIndex(path: file, options: .test)) { expected = "\($0)" }
        XCTAssertTrue(expected.hasPrefix("\(file):2:"), expected)
        for size in 1...3 {
            let messages = try SimulatedWorld(size: size).run { communicator -> String in
                do {
                    _ = try COCODetectionIndex.load(path: file, options: .test, communicator: communicator)
                    return "no error"
                } catch {
                    return "\(error)"
                }
            }
            XCTAssertEqual(messages, Array(repeating: expected, count: size), "world of \(size)")
        }
        // A missing file names the file too.
        let missing = (Self.directory as NSString).appendingPathComponent("missing.json")
        let messages = try SimulatedWorld(size: 2).run { communicator -> String in
            do { _ = try COCODetectionIndex.load(path: missing, options: .test, communicator: communicator); return "no error" }
            catch { return "\(error)" }
        }
        XCTAssertEqual(messages.count, 2)
        for message in messages { XCTAssertTrue(message.contains(missing), message) }
    }
}

/// `DetectionEvaluation`: detections of a generated val split, gathered over simulated ranks in different shares.
final class DetectionEvaluationTests: XCTestCase {
    nonisolated(unsafe) static var directory = ""
    nonisolated(unsafe) static var valFile = ""

    override class func setUp() {
        super.setUp()
        do {
            directory = try DetectionEvaluationSupport.temporaryDirectory("eval")
            valFile = try DetectionEvaluationSupport.makeSet(in: directory, val: 40, size: 192)
        } catch {
            XCTFail("cannot make the detection set: \(error)")
        }
    }

    override class func tearDown() {
        try? FileManager.default.removeItem(atPath: directory)
        super.tearDown()
    }

    /// Every rank's metrics of a world of `size` ranks evaluating in global batches of `batchSize`, and the results file.
    func evaluate(size: Int, batchSize: Int, maxDets: [Int], name: String) throws -> (metrics: [Metrics], file: String) {
        let index = try COCODetectionIndex(path: Self.valFile, options: .test)
        let path = DetectionEvaluation.resultsPath(workDirectory: (Self.directory as NSString).appendingPathComponent(name), step: 120)
        let metrics = try SimulatedWorld(size: size).run { communicator in
            let evaluation = try DetectionEvaluation(index: index, groundTruthPath: Self.valFile, maxDetections: maxDets)
            let results = DetectionEvaluationSupport.results(index: index, rank: communicator.rank, worldSize: size, batchSize: batchSize)
            return try evaluation.evaluate(results, communicator: communicator, resultsPath: path)
        }
        return (metrics, path)
    }

    func testSameMetricsAndFileOnAnyWorldAndBatchSizeEqualToEvalCOCO() throws {
        XCTAssertTrue(DetectionEvaluation.resultsPath(workDirectory: "/w", step: 120).hasSuffix("/w/eval/bbox_step_00000120.json"))
        for maxDets in [COCOEvaluator.mmdetectionMaxDetections, COCOEvaluator.standardMaxDetections] {
            let reference = try evaluate(size: 1, batchSize: 40, maxDets: maxDets, name: "one-\(maxDets[0])")
            let bytes = try Data(contentsOf: URL(fileURLWithPath: reference.file))
            let metrics = reference.metrics[0]
            XCTAssertEqual(metrics.primary, "bbox_mAP")
            XCTAssertEqual(metrics.samples, 40)
            XCTAssertEqual(metrics.values.map(\.name), ["bbox_mAP", "bbox_mAP_50", "bbox_mAP_75", "bbox_mAP_s", "bbox_mAP_m", "bbox_mAP_l"]
                           + maxDets.map { "bbox_mAR_\($0)" } + ["bbox_mAR_s", "bbox_mAR_m", "bbox_mAR_l"])
            for value in metrics.values { XCTAssertTrue(value.value > 0 && value.value < 1, "\(value.text) is not a fraction in (0, 1)") }

            // The metrics are what `lors eval-coco --json` prints for the file written.
            let printed = try DetectionEvaluationSupport.evalCOCO(gt: Self.valFile, dt: reference.file, maxDets: maxDets)
            let keys = DetectionEvaluationSupport.evalCOCOKeys(maxDets)
            XCTAssertEqual(Set(printed.keys), Set(keys))
            for (key, metric) in zip(keys, metrics.values) {
                XCTAssertEqual(printed[key]?.bitPattern, metric.value.bitPattern, "\(metric.name) vs eval-coco's \(key)")
            }

            for (size, batchSize) in [(2, 40), (2, 7), (3, 5), (3, 16)] {
                let run = try evaluate(size: size, batchSize: batchSize, maxDets: maxDets, name: "w\(size)-b\(batchSize)-\(maxDets[0])")
                XCTAssertEqual(run.metrics.count, size)
                for (rank, m) in run.metrics.enumerated() {
                    XCTAssertEqual(DetectionEvaluationSupport.bits(m), DetectionEvaluationSupport.bits(metrics),
                                   "rank \(rank) of \(size), batch \(batchSize)")
                    XCTAssertEqual(m.samples, 40)
                    XCTAssertEqual(m.values.map(\.name), metrics.values.map(\.name))
                }
                XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: run.file)), bytes, "results file of \(size) ranks, batch \(batchSize)")
            }
        }
    }

    func testResultsFileIsOrderedByImageIDAndReadsBackAsWritten() throws {
        let index = try COCODetectionIndex(path: Self.valFile, options: .test)
        let evaluation = try DetectionEvaluation(index: index, groundTruthPath: Self.valFile)
        // Two ranks with interleaved images, each rank's list in descending image order.
        var parts = [DetectionResults(), DetectionResults()]
        for image in stride(from: index.count - 1, through: 0, by: -1) {
            let d = DetectionEvaluationSupport.detections(of: image, index: index)
            parts[image % 2].add(image: image, labels: d.labels, boxes: d.boxes, scores: d.scores)
        }
        XCTAssertEqual(try DetectionResults(encoded: parts[0].encoded(), source: "rank 0"), parts[0])
        let (detections, imageIDs) = try evaluation.merge(parts)
        XCTAssertEqual(imageIDs, index.imageIDs.sorted())
        var expected: [COCODetection] = []
        for image in index.imageIDs.indices.sorted(by: { index.imageIDs[$0] < index.imageIDs[$1] }) {
            let d = DetectionEvaluationSupport.detections(of: image, index: index)
            for k in d.labels.indices {
                let x = Double(d.boxes[4 * k]), y = Double(d.boxes[4 * k + 1])
                expected.append(COCODetection(imageID: index.imageIDs[image], categoryID: index.categoryIDs[Int(d.labels[k])],
                                              box: COCOBox(x: x, y: y, width: Double(d.boxes[4 * k + 2]) - x, height: Double(d.boxes[4 * k + 3]) - y),
                                              score: Double(d.scores[k])))
            }
        }
        XCTAssertEqual(detections, expected)
        let path = (Self.directory as NSString).appendingPathComponent("order/results.json")
        try DetectionEvaluation.writeResults(detections, to: path)
        let truth = try COCOGroundTruth.load(path: Self.valFile)
        XCTAssertEqual(try COCODetections.load(path: path, groundTruth: truth), detections, "the JSON reads back to the same doubles")
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: (path as NSString).deletingLastPathComponent)
        XCTAssertEqual(leftovers, ["results.json"], "no temporary file is left")
    }

    func testEvaluatingPartOfTheImagesEqualsEvalCOCOOnThoseImages() throws {
        let index = try COCODetectionIndex(path: Self.valFile, options: .test)
        let part = Array(0..<15)
        let path = (Self.directory as NSString).appendingPathComponent("part/results.json")
        let metrics = try SimulatedWorld(size: 2).run { communicator in
            let evaluation = try DetectionEvaluation(index: index, groundTruthPath: Self.valFile)
            var results = DetectionResults()
            for image in part where image % 2 == communicator.rank {
                let d = DetectionEvaluationSupport.detections(of: image, index: index)
                results.add(image: image, labels: d.labels, boxes: d.boxes, scores: d.scores)
            }
            return try evaluation.evaluate(results, communicator: communicator, resultsPath: path)
        }
        XCTAssertEqual(metrics[0].samples, 15)
        // The ground truth of those images only, as pycocotools' params.imgIds restricts it.
        let truth = try COCOGroundTruth.load(path: Self.valFile)
        let ids = Set(part.map { index.imageIDs[$0] })
        let subset = try COCOGroundTruth(imageIDs: truth.imageIDs.filter(ids.contains), categories: truth.categories,
                                         annotations: truth.annotations.filter { ids.contains($0.imageID) })
        let detections = try COCODetections.load(path: path, groundTruth: subset)
        let summary = try COCOSummary(try COCOEvaluator.evaluate(groundTruth: subset, detections: detections,
                                                                 maxDetections: COCOEvaluator.mmdetectionMaxDetections))
        XCTAssertEqual(metrics[0].values.map(\.value.bitPattern), summary.entries.map(\.value.bitPattern))
        XCTAssertEqual(DetectionEvaluationSupport.bits(metrics[1]), DetectionEvaluationSupport.bits(metrics[0]))
    }

    func testErrorsOnRankZeroReachEveryRank() throws {
        let index = try COCODetectionIndex(path: Self.valFile, options: .test)
        let path = (Self.directory as NSString).appendingPathComponent("errors/results.json")
        func messages(groundTruth: String = Self.valFile, _ fill: @escaping (Int, inout DetectionResults) -> Void) throws -> [String] {
            try SimulatedWorld(size: 3).run { communicator -> String in
                let evaluation = try DetectionEvaluation(index: index, groundTruthPath: groundTruth)
                var results = DetectionResults()
                fill(communicator.rank, &results)
                do { _ = try evaluation.evaluate(results, communicator: communicator, resultsPath: path); return "no error" }
                catch { return "\(error)" }
            }
        }
        // Image 4 on ranks 0 and 2.
        let twice = try messages { rank, results in
            if rank != 1 { results.add(image: 4, labels: [0], boxes: [1, 1, 5, 5], scores: [0.5]) }
        }
        XCTAssertEqual(Set(twice).count, 1, "\(twice)")
        XCTAssertTrue(twice[0].contains("image id \(index.imageIDs[4]) was submitted twice (rank 0 and rank 2)"), twice[0])
        let nan = try messages { rank, results in
            results.add(image: rank, labels: [1], boxes: [1, 1, rank == 1 ? .nan : 5, 5], scores: [0.5])
        }
        XCTAssertEqual(Set(nan).count, 1, "\(nan)")
        XCTAssertTrue(nan[0].contains("rank 1, image id \(index.imageIDs[1]): a non-finite detection"), nan[0])
        let missing = (Self.directory as NSString).appendingPathComponent("no-such-gt.json")
        let noTruth = try messages(groundTruth: missing) { rank, results in results.add(image: rank, labels: [], boxes: [], scores: []) }
        XCTAssertEqual(Set(noTruth).count, 1, "\(noTruth)")
        XCTAssertTrue(noTruth[0].contains(missing), noTruth[0])
    }

    func testOriginalBoxesInvertTheTestPipeline() throws {
        var generator = SplitMix(seed: 21)
        var worst: Float = 0
        var flips = 0
        for trial in 0..<24 {
            let width = Int.random(in: 16...160, using: &generator), height = Int.random(in: 16...160, using: &generator)
            var boxes: [Float] = [], labels: [Int32] = []
            for _ in 0..<5 {
                let x1 = Float.random(in: 0..<Float(width) - 2, using: &generator), y1 = Float.random(in: 0..<Float(height) - 2, using: &generator)
                boxes += [x1, y1, Float.random(in: x1...Float(width), using: &generator), Float.random(in: y1...Float(height), using: &generator)]
                labels.append(0)
            }
            let image = ByteImage(width: width, height: height, channels: 3, pixels: [UInt8](repeating: 90, count: width * height * 3))
            let sample = DetectionSample(image: image, boxes: boxes, labels: labels)
            let pipeline: DetectionPipeline = trial % 2 == 0 ? .test : .standard
            let plan = pipeline.plan(width: width, height: height, seed: 3, epoch: 0, index: trial)
            let transformed = DetectionPipeline.apply(plan, to: sample)
            if transformed.flipped { flips += 1 }
            let back = DetectionTransforms.originalBoxes(transformed.boxes, scaleFactor: transformed.scaleFactor,
                                                         flipped: transformed.flipped, width: width, height: height)
            XCTAssertEqual(back.count, boxes.count)
            for (a, b) in zip(back, boxes) { worst = max(worst, abs(a - b) / Float(max(width, height))) }
            for k in stride(from: 0, to: back.count, by: 4) {
                XCTAssertTrue(back[k] >= 0 && back[k + 2] <= Float(width) && back[k + 1] >= 0 && back[k + 3] <= Float(height))
            }
        }
        XCTAssertLessThan(worst, 1e-6, "largest difference relative to the image size")
        XCTAssertGreaterThan(flips, 0, "some samples were flipped")
        // Boxes beyond the transformed image are clipped to the original one.
        let clipped = DetectionTransforms.originalBoxes([-20, -5, 700, 900], scaleFactor: (2, 4), flipped: false, width: 300, height: 200)
        XCTAssertEqual(clipped, [0, 0, 300, 200])
        let flipped = DetectionTransforms.originalBoxes([20, 8, 60, 40], scaleFactor: (2, 4), flipped: true, width: 300, height: 200)
        XCTAssertEqual(flipped, [270, 2, 290, 10])
    }

    func testBatchBoxesMapBackToTheIndexBoxes() throws {
        let index = try COCODetectionIndex(path: Self.valFile, options: .test)
        let images = (Self.directory as NSString).appendingPathComponent("val")
        for pipeline in [DetectionPipeline.test, .standard] {
            let assembler = DetectionBatchAssembler(index: index, imageDirectory: images, pipeline: pipeline, seed: 11)
            let batch = try assembler.assemble(Array(0..<8), epoch: 0)
            for (j, image) in batch.imageIndices.enumerated() {
                let back = batch.originalBoxes(batch.boxes[j], sample: j, index: index)
                let truth = Array(index.boxes(image))
                XCTAssertEqual(back.count, truth.count)
                for (a, b) in zip(back, truth) { XCTAssertEqual(a, b, accuracy: 1e-3, "\(pipeline) image \(image)") }
            }
            if pipeline == .standard { XCTAssertTrue(batch.flipped.contains(true)) }
        }
    }
}

/// Index loading and evaluation over MPI ranks (run by cluster/test.sh with 2 and 3 ranks).
extension MPITrainingTests {
    func testMPIDetectionIndexAndEvaluationEqualOneRank() throws {
        guard let text = ProcessInfo.processInfo.environment["LORS_EXPECT_RANKS"], let expected = Int(text) else {
            throw XCTSkip("multi-rank MPI test: run under mpirun with LORS_EXPECT_RANKS=N (bash cluster/test.sh)")
        }
        let world = try MPICommunicator()
        XCTAssertEqual(world.size, expected)
        // Rank 0 makes the set; every rank uses rank 0's directory.
        var mine = ""
        if world.rank == 0 {
            mine = try DetectionEvaluationSupport.temporaryDirectory("mpi")
            try DetectionEvaluationSupport.makeSet(in: mine, val: 17)
        }
        let shared = try world.broadcast(mine, root: 0)
        defer { if world.rank == 0 { try? FileManager.default.removeItem(atPath: shared) } }
        let valFile = (shared as NSString).appendingPathComponent("annotations/instances_val.json")

        let index = try COCODetectionIndex.load(path: valFile, options: .test, communicator: world)
        XCTAssertEqual(index, try COCODetectionIndex(path: valFile, options: .test), "rank \(world.rank)")

        // Malformed JSON: every rank throws rank 0's message, which names the file.
        let broken = (shared as NSString).appendingPathComponent("broken.json")
        if world.rank == 0 { try Data("{\"images\": [}".utf8).write(to: URL(fileURLWithPath: broken)) }
        try world.barrier()
        XCTAssertThrowsError(try COCODetectionIndex.load(path: broken, options: .test, communicator: world)) { error in
            XCTAssertTrue("\(error)".hasPrefix("\(broken):1:"), "rank \(world.rank): \(error)")
        }

        let evaluation = try DetectionEvaluation(index: index, groundTruthPath: valFile)
        let path = DetectionEvaluation.resultsPath(workDirectory: (shared as NSString).appendingPathComponent("mpi"), step: 3)
        let results = DetectionEvaluationSupport.results(index: index, rank: world.rank, worldSize: world.size, batchSize: 5)
        let metrics = try evaluation.evaluate(results, communicator: world, resultsPath: path)
        let all = try world.allGather(bytes: DetectionEvaluationSupport.bits(metrics).flatMap { value in
            withUnsafeBytes(of: value.littleEndian) { Array($0) }
        })
        XCTAssertEqual(Set(all).count, 1, "every rank returns the same metrics")
        if world.rank == 0 {
            let single = DetectionEvaluationSupport.results(index: index, rank: 0, worldSize: 1, batchSize: 17)
            let onePath = (shared as NSString).appendingPathComponent("one/results.json")
            let one = try DetectionEvaluation(index: index, groundTruthPath: valFile)
                .evaluate(single, communicator: LocalCommunicator(), resultsPath: onePath)
            XCTAssertEqual(DetectionEvaluationSupport.bits(metrics), DetectionEvaluationSupport.bits(one))
            XCTAssertEqual(metrics.samples, 17)
            XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: path)), try Data(contentsOf: URL(fileURLWithPath: onePath)))
        }
        try world.barrier()
    }
}
