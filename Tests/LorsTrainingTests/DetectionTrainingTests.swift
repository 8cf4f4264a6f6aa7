import Foundation
import XCTest
@testable import LorsCLI
import LorsCheckpoint
import LorsConfig
import LorsData
import LorsDetection
import LorsDistributed
import LorsModels
import LorsTensor
import LorsTestSupport
import LorsTraining

/// Shared by the in-process and the MPI detection training tests: a tiny AdaMixer on a tiny set made as
/// `lors make-detection` makes it.
enum DetectionTrainingSupport {
    static let fashionMNIST = "/usr/share/datasets/fashion-mnist"

    /// 48 training and 8 validation canvases of 64 px (PNG) in `directory/set`.
    static func makeSet(in directory: String, train: Int = 48, val: Int = 8) throws -> String {
        let root = (directory as NSString).appendingPathComponent("set")
        var options = DetectionSynthesis.Options(outputDirectory: root)
        options.trainImages = train
        options.valImages = val
        options.size = 64
        options.seed = 3
        options.fashionMNISTRoot = fashionMNIST
        _ = try DetectionSynthesis.generate(options)
        return root
    }

    /// A tiny AdaMixer (LORS decoder) trained with SGD: 6 steps per epoch of 8 images.
    static func yaml(root: String) -> String {
        """
        seed: 11
        model:
          type: adamixer
          adamixer:
            backbone: {depth: 18, width: 8, norm: group_norm, norm_groups: 4, frozen_stages: -1}
            num_queries: 6
            num_stages: 6
            content_dim: 32
            feedforward_channels: 32
            num_heads: 2
            sampling_groups: 2
            in_points: 4
            out_points: 4
            num_classes: 10
            lors: {enabled: true, lorsa_rank: 2, lorsa_groups: [1, 1, 2, 2, 3, 3], lorst_rank: 2, lorst_groups: [1, 1, 1, 1, 1, 1]}
        data:
          dataset: fmnist_det
          root: \(root)
          train_images: train
          train_annotations: annotations/instances_train.json
          val_images: val
          val_annotations: annotations/instances_val.json
          img_scale: [64, 64]
        train: {batch_size: 8, max_steps: 5, log_interval: 1, grad_clip: 1.0}
        optimizer: {type: sgd, lr: 0.01, momentum: 0.9, weight_decay: 0.0001}
        lr_schedule: {preset: null, policy: step, milestones: [8, 11], warmup_iters: 2, warmup_ratio: 0.1}
        eval: {test_batch_size: 4, interval_epochs: 100}
        log: {console: false, tensorboard: false}
        """
    }

    /// The scale floor of parameter comparisons: the neck's conv biases stay at rounding noise (the GroupNorm after
    /// each conv has one channel per group at content_dim 32 and cancels them), so their differences are measured
    /// against 1e-2 instead of their own size.
    static let floor: Float = 1e-2

    static func config(_ directory: String, root: String, _ overrides: [String] = []) throws -> Config {
        try DistributedTrainingSupport.config(directory, overrides, yaml: yaml(root: root))
    }
}

/// The detection task through the trainer: the criterion's gradients, N simulated ranks and accumulation against one
/// rank, resume, evaluation and the results file, bad input.
final class DetectionTrainingTests: XCTestCase {
    var directory = ""
    override func setUpWithError() throws { directory = try DistributedTrainingSupport.temporaryDirectory() }
    override func tearDown() {
        try? FileManager.default.removeItem(atPath: directory)
        Tape.shared.reset()  // no recorded forward may outlive a test (simulated ranks refuse collectives then)
    }

    /// The 6-stage criterion (matching held fixed by the inputs, corner decoding, focal + L1 + GIoU, stage sum and the
    /// normaliser) against central differences, for the logits and the (x, y, z, r) boxes of every stage.
    func testSixStageCriterionPassesGradientCheck() throws {
        let (b, q, c, stages) = (2, 5, 3, 6)
        var inputs: [Tensor] = []
        for s in 0..<stages {
            inputs.append(Tensor(RandomKey(seed: 21, purpose: "test.criterion.logits.\(s)").uniforms(b * q * c, low: -2, high: 2), shape: [b, q, c], requiresGrad: true))
            var boxes: [Float] = []
            let all = RandomKey(seed: 21, purpose: "test.criterion.boxes.\(s)").uniforms(b * q * 4)
            for k in 0..<(b * q) {
                let u = all[(k * 4)..<(k * 4 + 4)].map { $0 }
                boxes += [12 + 40 * u[0], 10 + 30 * u[1], 3.5 + 1.5 * u[2], -0.8 + 1.6 * u[3]]
            }
            inputs.append(Tensor(boxes, shape: [b, q, 4], requiresGrad: true))
        }
        let gt: [[Float]] = [[5, 6, 30, 28, 20, 18, 58, 50], [10, 12, 40, 44]]
        let labels: [[Int32]] = [[0, 2], [1]]
        let sizes = [(height: 60, width: 64), (height: 64, width: 56)]
        let criterion = AdaMixerCriterion()
        let check = GradientCheck(epsilon: 2e-3, relativeTolerance: 2e-2, absoluteTolerance: 2e-3)
        let mismatches = check.run(inputs: inputs) { t in
            let outputs = (0..<stages).map {
                AdaMixerStageOutput(classLogits: t[2 * $0], boxes: t[2 * $0 + 1], content: t[2 * $0])
            }
            return try! criterion(outputs, boxes: gt, labels: labels, validSizes: sizes, normaliser: 7) { j, s in "image \(j) stage \(s)" }.total
        }
        XCTAssertTrue(mismatches.isEmpty, "\(mismatches.prefix(5))")
    }

    /// Peak memory as the step benchmarks and the training log report it: /proc/self/status values of any width (from
    /// 10 GB on, "VmHWM:" and the number are separated by a tab only).
    func testStatusMemoryReadsWideValues() {
        XCTAssertEqual(ProcessStats.statusMB("Name:\tx\nVmHWM:\t  204800 kB\nVmRSS:\t  102400 kB\n", key: "VmHWM:"), 200)
        XCTAssertEqual(ProcessStats.statusMB("VmHWM:\t12582912 kB\n", key: "VmHWM:"), 12288)
        XCTAssertEqual(ProcessStats.statusMB("VmRSS:\t1 kB\n", key: "VmHWM:"), 0)
        XCTAssertGreaterThan(ProcessStats.peakRSSMB, 1)
    }

    /// Top-k over queries × classes: score descending, ties by query-major index, boxes of the chosen query.
    func testTopDetectionsOrderAndBoxes() {
        let logits: [Float] = [0, 2, -1, 2, 5, 0]  // 3 queries × 2 classes
        let boxes: [Float] = (0..<12).map(Float.init)
        let top = DetectionTask.topDetections(logits: logits[...], boxes: boxes[...], classes: 2, maxPerImage: 4)
        XCTAssertEqual(top.labels, [0, 1, 1, 0])  // 5 (q2 c0), 2 (q0 c1), 2 (q1 c1), 0 (q0 c0)
        XCTAssertEqual(top.boxes, [8, 9, 10, 11, 0, 1, 2, 3, 4, 5, 6, 7, 0, 1, 2, 3])
        XCTAssertEqual(top.scores[0], 1 / (1 + exp(-5)), accuracy: 1e-7)
        XCTAssertEqual(top.scores[3], 0.5, accuracy: 1e-7)
    }

    /// 1, 2 and 4 ranks (and 2 micro-batches) train the same detector: the matched-query count is summed over ranks
    /// before the loss, batches are padded to the global batch's size, so 5 SGD steps agree to float rounding of the
    /// gradient sums; the replicas of one world, and a repeated run, agree bit for bit.
    func testSimulatedRanksAndAccumulationEqualOneRank() throws {
        let root = try DetectionTrainingSupport.makeSet(in: directory)
        let config = try DetectionTrainingSupport.config(directory, root: root)
        let reference = try DistributedTrainingSupport.train(config, in: directory)
        let again = try DistributedTrainingSupport.train(config, in: directory)
        XCTAssertTrue(DistributedTrainingSupport.bitwiseEqual(reference, again), "the same run twice")
        for size in [2, 4] {
            let results = try DistributedTrainingSupport.simulate(size, config, in: directory)
            for r in 1..<size { XCTAssertTrue(DistributedTrainingSupport.bitwiseEqual(results[r], results[0]), "world \(size) rank \(r)") }
            let (d, name) = DistributedTrainingSupport.worst(reference, results[0], floor: DetectionTrainingSupport.floor)
            XCTAssertLessThanOrEqual(d, 1e-5, "world \(size): '\(name)' after 5 steps differs by \(d)")
        }
        let accumulated = try DistributedTrainingSupport.train(
            try DetectionTrainingSupport.config(directory, root: root, ["train.accumulation_steps=2"]), in: directory)
        let (d, name) = DistributedTrainingSupport.worst(reference, accumulated, floor: DetectionTrainingSupport.floor)
        XCTAssertLessThanOrEqual(d, 1e-5, "2 micro-batches: '\(name)' differs by \(d)")
        XCTAssertFalse(DistributedTrainingSupport.bitwiseEqual(reference, DistributedTrainingSupport.parameters(
            try TrainingRun(config: config, workDirectory: directory + "/untrained"))), "the run changed the parameters")
    }

    /// `lors train --np 2` on the detector stopped at step 3 (mid-epoch: 6 steps per epoch) and resumed ends at step 5
    /// with the parameters and optimizer state of 5 uninterrupted steps, bit for bit (the sampler, the pipeline's random
    /// draws and the matched-query sums are functions of seed, epoch and step only).
    func testResumeMidEpochAtTwoRanksIsBitwise() throws {
        let root = try DetectionTrainingSupport.makeSet(in: directory)
        _ = try DetectionTrainingSupport.config(directory, root: root, [])
        let path = directory + "/dp.yaml"
        func train(_ work: String, steps: Int) throws {
            let run = try runProcess(builtExecutable("lors"), ["train", path, "--work-dir", work, "--np", "2", "--threads", "1",
                                                               "--set", "optimizer.type=adamw", "--set", "train.max_steps=\(steps)"])
            XCTAssertEqual(run.status, 0, "lors train --np 2, \(steps) steps: \(run.stderr)\nstdout: \(run.stdout)")
        }
        func contents(_ work: String, step: Int, under prefix: String) throws -> [String: [UInt32]] {
            let reader = try CheckpointReader(path: CheckpointDirectory(workDirectory: work).path(of: CheckpointDirectory.fileName(step: step)))
            defer { try? reader.close() }
            return Dictionary(uniqueKeysWithValues: try reader.datasets.filter { $0.path.hasPrefix(prefix) }.map {
                ($0.path, try reader.read($0.path).map(\.bitPattern))
            })
        }
        let reference = directory + "/uninterrupted", resumed = directory + "/resumed"
        try train(reference, steps: 5)
        try train(resumed, steps: 3)
        try train(resumed, steps: 5)
        let log = try String(contentsOfFile: resumed + "/log.txt", encoding: .utf8)
        XCTAssertTrue(log.contains("resumed from \(resumed)/checkpoints/step_00000003.h5: step 3"), log)
        for group in [CheckpointLayout.modelGroup, CheckpointLayout.optimizerGroup] {
            let expected = try contents(reference, step: 5, under: group + "/")
            XCTAssertFalse(expected.isEmpty, group)
            XCTAssertEqual(try contents(resumed, step: 5, under: group + "/"), expected, "\(group) after step 5")
        }
    }

    /// `lors train` on the detector: metrics.jsonl has the COCO keys, the results file of the evaluation exists and
    /// `lors eval` of the final checkpoint reproduces the trainer's evaluation exactly.
    func testTrainWritesCOCOResultsAndEvalReproducesThem() throws {
        let root = try DetectionTrainingSupport.makeSet(in: directory)
        let config = try DetectionTrainingSupport.config(directory, root: root, ["train.max_steps=3"])
        let work = directory + "/work"
        var train = try LorsCommand.parseAsRoot(["train", directory + "/dp.yaml", "--work-dir", work, "--set", "train.max_steps=3"])
        try train.run()
        let results = DetectionEvaluation.resultsPath(workDirectory: work, step: 3)
        XCTAssertTrue(FileManager.default.fileExists(atPath: results), results)
        let lines = try String(contentsOfFile: work + "/metrics.jsonl", encoding: .utf8).split(separator: "\n")
        let evalLine = try XCTUnwrap(lines.last { $0.contains("\"type\":\"eval\"") })
        // The numbers as written (Foundation's JSON parser may round the last digit).
        func written(_ key: String) -> Double? {
            guard let start = evalLine.range(of: "\"\(key)\":") else { return nil }
            return Double(evalLine[start.upperBound...].prefix { $0 != "," && $0 != "}" })
        }
        try FileManager.default.removeItem(atPath: results)
        let checkpoint = CheckpointDirectory(workDirectory: work).path(of: "step_00000003.h5")
        let reader = try CheckpointReader(path: checkpoint)
        defer { try? reader.close() }
        let evaluated = try CheckpointTools.evaluate(checkpoint: reader, settings: RunSettings(config))
        XCTAssertEqual(evaluated.primary, "bbox_mAP")
        XCTAssertEqual(evaluated.samples, 8)
        for metric in evaluated.values {
            XCTAssertEqual(written(metric.name), metric.value, "lors eval's \(metric.name) equals the trainer's")
        }
        XCTAssertTrue(FileManager.default.fileExists(atPath: results), "lors eval writes the results next to the run")
    }

    /// `data.num_workers` threads assemble a micro-batch into the same tensors as the training thread alone, and an
    /// unusable image is reported the same way.
    func testWorkersAssembleTheSameBatch() throws {
        let root = try DetectionTrainingSupport.makeSet(in: directory, train: 12, val: 2)
        let task = try TrainingSetup.detectionTask(RunSettings(try DetectionTrainingSupport.config(directory, root: root)),
                                                   workDirectory: directory + "/work")
        let global = Array(0..<task.data.trainCount)
        let one = try task.data.train.assemble(global, positions: 2..<9, epoch: 1, workers: 1)
        let three = try task.data.train.assemble(global, positions: 2..<9, epoch: 1, workers: 3)
        XCTAssertEqual(one.imageIndices, three.imageIndices)
        XCTAssertEqual(one.images.toArray().map(\.bitPattern), three.images.toArray().map(\.bitPattern))
        XCTAssertEqual(one.boxes, three.boxes)
        XCTAssertEqual(one.labels, three.labels)
        try FileManager.default.removeItem(atPath: root + "/train/" + task.data.trainIndex.fileName(5))
        for workers in [1, 3] {
            XCTAssertThrowsError(try task.data.train.assemble(global, positions: 2..<9, epoch: 1, workers: workers)) { error in
                XCTAssertTrue("\(error)".contains(task.data.trainIndex.fileName(5)), "\(error)")
            }
        }
    }

    /// A training image without annotations (kept by `data.filter_empty_gt: false`) trains as background: it adds no
    /// matched query and its loss is the focal loss of its all-negative targets alone.
    func testImageWithoutAnnotationsTrainsAsBackground() throws {
        let root = try DetectionTrainingSupport.makeSet(in: directory)
        let path = root + "/annotations/instances_train.json"
        // Drop every annotation of image id 1.
        var json = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as! [String: Any]
        let annotations = json["annotations"] as! [[String: Any]]
        json["annotations"] = annotations.filter { ($0["image_id"] as! Int) != 1 }
        try JSONSerialization.data(withJSONObject: json).write(to: URL(fileURLWithPath: path))
        let settings = RunSettings(try DetectionTrainingSupport.config(directory, root: root, ["data.filter_empty_gt=false"]))
        let task = try TrainingSetup.detectionTask(settings, workDirectory: directory + "/work")
        let image = try XCTUnwrap(task.data.trainIndex.imageIDs.firstIndex(of: 1))
        let slice = BatchSlice(globalBatch: [image], positions: 0..<1, epoch: 0, step: 1)
        XCTAssertEqual(try task.stepStatistics([slice]), [0])
        let batch = try task.data.train.assemble([image], epoch: 0)
        let parts = try withoutGradients { try task.loss(batch, normaliser: 1) }
        XCTAssertEqual(parts.l1.item(), 0)
        XCTAssertEqual(parts.giou.item(), 0)
        XCTAssertGreaterThan(parts.classification.item(), 0)
        XCTAssertEqual(parts.total.item(), parts.classification.item())
        // With filtering on (the default) the image is not trained on.
        let filtered = try TrainingSetup.detectionTask(RunSettings(try DetectionTrainingSupport.config(directory, root: root)),
                                                       workDirectory: directory + "/work")
        XCTAssertFalse(filtered.data.trainIndex.imageIDs.contains(1))
    }

    /// Bad input stops `lors train` on a detector with exit code 1 and an error naming what is wrong: a missing image
    /// (its file and image id), a corrupt JPEG, malformed JSON (file, line and column), an annotation with a negative
    /// width (its id), a category id not in `categories`.
    func testBadInputStopsTrainingWithExitOne() throws {
        let root = (directory as NSString).appendingPathComponent("set")
        var options = DetectionSynthesis.Options(outputDirectory: root)
        options.trainImages = 8
        options.valImages = 2
        options.size = 64
        options.seed = 3
        options.format = .jpeg
        options.fashionMNISTRoot = DetectionTrainingSupport.fashionMNIST
        _ = try DetectionSynthesis.generate(options)
        _ = try DetectionTrainingSupport.config(directory, root: root)
        let trainJSON = root + "/annotations/instances_train.json"
        let original = try String(contentsOfFile: trainJSON, encoding: .utf8)
        let index = try COCODetectionIndex(path: trainJSON, options: .test)
        let firstImage = root + "/train/" + index.fileName(0)
        let pixels = try Data(contentsOf: URL(fileURLWithPath: firstImage))

        func train(_ what: String, expecting fragments: [String]) throws {
            let run = try runProcess(builtExecutable("lors"), ["train", directory + "/dp.yaml", "--work-dir", directory + "/work-\(what)",
                                                               "--set", "train.batch_size=8", "--set", "train.max_steps=1"])
            XCTAssertEqual(run.status, 1, "\(what): \(run.stderr)")
            for fragment in fragments { XCTAssertTrue(run.stderr.contains(fragment), "\(what): '\(fragment)' in \(run.stderr)") }
        }
        // Every training image is in the first global batch of 8.
        try FileManager.default.removeItem(atPath: firstImage)
        try train("missing", expecting: [index.fileName(0), "image \(index.imageIDs[0])"])
        try Data(pixels.prefix(200) + Data(repeating: 0x5A, count: 300)).write(to: URL(fileURLWithPath: firstImage))
        try train("corrupt", expecting: [index.fileName(0), "image \(index.imageIDs[0])"])
        try pixels.write(to: URL(fileURLWithPath: firstImage))

        try (original.replacingOccurrences(of: "\"annotations\"", with: "\"annotations\" [")).write(toFile: trainJSON, atomically: true, encoding: .utf8)
        try train("malformed", expecting: ["instances_train.json:1:", "malformed JSON"])  // file:line:column
        guard let range = original.range(of: "\"bbox\":[") else { return XCTFail("no bbox in \(trainJSON)") }
        let afterX = original[range.upperBound...].firstIndex(of: ",")!
        let afterY = original[original.index(after: afterX)...].firstIndex(of: ",")!
        let negative = original.replacingCharacters(in: original.index(after: afterY)..<original.index(after: afterY), with: "-")
        try negative.write(toFile: trainJSON, atomically: true, encoding: .utf8)
        try train("negative width", expecting: ["instances_train.json", "negative width", "id"])
        let unknown = original.replacingOccurrences(of: "\"category_id\":3,", with: "\"category_id\":99,")
        XCTAssertNotEqual(unknown, original)
        try unknown.write(toFile: trainJSON, atomically: true, encoding: .utf8)
        try train("unknown category", expecting: ["instances_train.json", "category_id 99", "not in 'categories'"])
    }

    /// More classes in the config than categories in the set stops `lors train` before training, naming the key, the
    /// file and both numbers, with a non-zero exit code.
    func testClassCountMismatchIsAnErrorOfTheCommand() throws {
        let root = try DetectionTrainingSupport.makeSet(in: directory, train: 8, val: 2)
        _ = try DetectionTrainingSupport.config(directory, root: root)
        let result = try runProcess(builtExecutable("lors"), ["train", directory + "/dp.yaml", "--work-dir", directory + "/work",
                                                              "--set", "model.adamixer.num_classes=12"])
        XCTAssertNotEqual(result.status, 0)
        XCTAssertTrue(result.stderr.contains("model.adamixer.num_classes"), result.stderr)
        XCTAssertTrue(result.stderr.contains("12 classes") && result.stderr.contains("has 10"), result.stderr)
        XCTAssertTrue(result.stderr.contains("instances_train.json"), result.stderr)
    }
}

/// The detector trained under mpirun (`lors-worker`'s code path) against `--simulate-ranks` (same world size) and one
/// rank: 5 SGD steps with the same global batch agree to 1e-5. Runs only with LORS_EXPECT_RANKS (cluster/test.sh).
final class MPIDetectionTrainingTests: XCTestCase {
    func testMPIDetectorEqualsSimulatedRanksAndOneRank() throws {
        let (world, mine, shared, cleanUp) = try DistributedTrainingSupport.mpiWorld()
        defer { cleanUp() }
        let expected = world.size
        // Rank 0 makes the set in its directory; every rank reads it there.
        if world.rank == 0 { _ = try DetectionTrainingSupport.makeSet(in: shared) }
        try world.barrier()
        let config = try DetectionTrainingSupport.config(mine, root: shared + "/set")
        let mpi = try DistributedTrainingSupport.train(config, in: shared, world: world)
        let simulated = try DistributedTrainingSupport.simulate(expected, config, in: mine)[0]
        let single = try DistributedTrainingSupport.train(config, in: mine)
        for (name, reference) in [("--simulate-ranks \(expected)", simulated), ("one rank", single)] {
            let (d, tensor) = DistributedTrainingSupport.worst(reference, mpi, floor: DetectionTrainingSupport.floor)
            XCTAssertLessThanOrEqual(d, 1e-5, "rank \(world.rank): '\(tensor)' vs \(name) differs by \(d)")
        }
        try world.barrier()
    }
}
