import Foundation
import XCTest
import LorsCLI
import LorsConfig
import LorsData
import LorsTraining

/// Tiny runs on the synthetic set: files in the work dir, hooks, accumulation, errors.
final class EndToEndTests: XCTestCase {
    var directory = ""

    override func setUpWithError() throws {
        directory = (NSTemporaryDirectory() as NSString).appendingPathComponent("lors-train-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    override func tearDown() { try? FileManager.default.removeItem(atPath: directory) }

    static let tinyYAML = """
        seed: 3
        model:
          vit: {image_size: 8, in_channels: 1, patch_size: 4, num_classes: 4, embed_dim: 16, depth: 2, num_heads: 2,
                drop_rate: 0.1, drop_path_rate: 0.1}
        data:
          dataset: synthetic
          max_train_samples: 64
          max_test_samples: 40
          augmentation: {random_flip: true, random_crop_padding: 1, label_smoothing: 0.1}
        train: {batch_size: 16, epochs: 3, log_interval: 1, grad_clip: 1.0}
        optimizer: {lr: 0.003, no_decay_on: [norm, bias, cls_token, pos_embed]}
        lr_schedule: {policy: cosine, warmup_iters: 2}
        eval: {test_batch_size: 16}
        log: {console: false}
        """

    private func writeConfig(_ text: String = EndToEndTests.tinyYAML) throws -> String {
        let path = (directory as NSString).appendingPathComponent("tiny.yaml")
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    private func metrics(_ workDir: String) throws -> [[String: Any]] {
        let text = try String(contentsOfFile: (workDir as NSString).appendingPathComponent("metrics.jsonl"), encoding: .utf8)
        return try text.split(separator: "\n").map {
            try XCTUnwrap(JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])
        }
    }

    func testTrainCommandWithMaxStepsWritesMetricsLogAndEvents() throws {
        let config = try writeConfig()
        let workDir = (directory as NSString).appendingPathComponent("work")
        var command = try LorsCommand.parseAsRoot(["train", config, "--work-dir", workDir, "--set", "train.max_steps=3",
                                                   "--threads", "1"])
        try command.run()

        let lines = try metrics(workDir)
        let train = lines.filter { $0["type"] as? String == "train" }
        XCTAssertEqual(train.map { $0["step"] as? Int }, [1, 2, 3])
        XCTAssertEqual(train.map { $0["epoch"] as? Int }, [1, 1, 1])
        for line in train {
            XCTAssertNotNil(line["loss"] as? Double)
            XCTAssertNotNil(line["lr"] as? Double)
        }
        XCTAssertEqual(train[0]["lr"] as? Double ?? 0, 0.003 * 0.001, accuracy: 1e-12, "first step at the warmup start")
        let evals = lines.filter { $0["type"] as? String == "eval" }
        XCTAssertEqual(evals.count, 1, "one evaluation at the end of a max_steps run")
        XCTAssertEqual(evals.first?["step"] as? Int, 3)
        let top1 = try XCTUnwrap(evals.first?["top1"] as? Double), top5 = try XCTUnwrap(evals.first?["top5"] as? Double)
        XCTAssertTrue((0...1).contains(top1) && top5 >= top1 && top5 <= 1)

        let log = try String(contentsOfFile: workDir + "/log.txt", encoding: .utf8)
        XCTAssertTrue(log.contains("step 3 loss"), log)
        XCTAssertTrue(log.contains("samples/s") && log.contains("eta") && log.contains("rss"), log)
        XCTAssertTrue(log.contains("done: 3 steps"), log)
        XCTAssertTrue(FileManager.default.fileExists(atPath: workDir + "/config.yaml"))

        let events = try FileManager.default.contentsOfDirectory(atPath: workDir + "/tb")
        XCTAssertEqual(events.count, 1)
        XCTAssertTrue(events[0].hasPrefix("events.out.tfevents."))
        let records = try TFRecordReader.records(Data(contentsOf: URL(fileURLWithPath: workDir + "/tb/" + events[0])))
        XCTAssertEqual(records.count, 1 + 3 + 1, "file_version + 3 train + 1 eval events")
        XCTAssertTrue(records[0].contains(Data("brain.Event:2".utf8)))
        XCTAssertTrue(records[1].contains(Data("train/loss".utf8)))
        XCTAssertTrue(records[4].contains(Data("eval/top1".utf8)))
    }

    func testFullScheduleLearnsAndEvaluatesEveryEpoch() throws {
        let config = try ConfigLoader(schema: .lors).load(yaml: EndToEndTests.tinyYAML, overrides: ["train.epochs=10", "optimizer.lr=0.01"])
        let run = try TrainingRun(config: config, workDirectory: directory + "/full")
        let recorder = RecordingHook()
        run.trainer.hooks.append(recorder)
        try run.run()
        XCTAssertEqual(run.trainer.state.step, 40)
        XCTAssertEqual(recorder.events.filter { $0 == "beforeEpoch" }.count, 10)
        XCTAssertEqual(recorder.events.filter { $0 == "afterEpoch" }.count, 10)
        XCTAssertEqual(recorder.events.filter { $0 == "afterIteration" }.count, 40)
        XCTAssertEqual(recorder.evaluationSteps, Array(stride(from: 4, through: 40, by: 4)), "every epoch, none repeated at the end")
        XCTAssertEqual(recorder.events.first, "beforeRun")
        XCTAssertEqual(recorder.events.last, "afterRun")
        let losses = recorder.losses
        XCTAssertLessThan(losses.suffix(4).reduce(0, +), losses.prefix(4).reduce(0, +), "the loss goes down")
        XCTAssertGreaterThan(run.trainer.lastEvaluation?.metrics["top1"] ?? 0, 0.5, "the synthetic bands are learnable")
    }

    func testAccumulationGivesTheSameStepsAsOneBigBatch() throws {
        func train(_ overrides: [String]) throws -> ([Double], [Float]) {
            let config = try ConfigLoader(schema: .lors).load(yaml: EndToEndTests.tinyYAML,
                                                              overrides: ["train.max_steps=3"] + overrides)
            let run = try TrainingRun(config: config, workDirectory: directory + "/acc\(overrides.count)")
            let recorder = RecordingHook()
            run.trainer.hooks.append(recorder)
            try run.run()
            return (recorder.losses, run.trainer.model.parameters.flatMap { $0.toArray() })
        }
        let (plainLosses, plainWeights) = try train([])
        let (accumulatedLosses, accumulatedWeights) = try train(["train.accumulation_steps=4"])
        for (a, b) in zip(plainLosses, accumulatedLosses) { XCTAssertEqual(a, b, accuracy: 1e-5) }
        XCTAssertEqual(plainWeights.count, accumulatedWeights.count)
        let maxDifference = zip(plainWeights, accumulatedWeights).map { abs($0 - $1) }.max() ?? 0
        XCTAssertLessThan(maxDifference, 1e-4, "dropout, augmentation and the loss scale do not depend on the split")
    }

    func testStopRequestFromAHookEndsTheRunAfterTheStep() throws {
        let config = try ConfigLoader(schema: .lors).load(yaml: EndToEndTests.tinyYAML)
        let run = try TrainingRun(config: config, workDirectory: directory + "/stop")
        run.trainer.hooks.append(StopAtStep(5))
        try run.run()
        XCTAssertEqual(run.trainer.state.step, 5)
        XCTAssertEqual(run.trainer.state.stopReason, "test stop")
        XCTAssertEqual(run.trainer.lastEvaluation?.step, 5, "the end-of-run evaluation sees the last step")
    }

    func testErrorsNameTheCause() throws {
        let missing = try ConfigLoader(schema: .lors).load(yaml: "data: {dataset: fashion_mnist, root: \(directory)/none}")
        XCTAssertThrowsError(try TrainingRun(config: missing, workDirectory: directory + "/e1")) { error in
            XCTAssertTrue("\(error)".contains("\(directory)/none/train-images-idx3-ubyte.gz"), "\(error)")
        }
        let mismatch = try ConfigLoader(schema: .lors).load(yaml: EndToEndTests.tinyYAML, overrides: ["model.vit.num_classes=5"])
        let synthetic = try TrainingSetup.datasets(RunSettings(mismatch))  // synthetic follows the model
        XCTAssertEqual(synthetic.train.classes, 5)
        let big = try ConfigLoader(schema: .lors).load(yaml: EndToEndTests.tinyYAML, overrides: ["train.batch_size=128"])
        XCTAssertThrowsError(try TrainingRun(config: big, workDirectory: directory + "/e2")) { error in
            XCTAssertTrue("\(error)".contains("fewer than train.batch_size 128"), "\(error)")
        }
        // The CLI reports a bad key and exits non-zero (ArgumentParser maps a thrown error to exit code 1).
        let config = try writeConfig()
        var command = try LorsCommand.parseAsRoot(["train", config, "--work-dir", directory + "/e3", "--set", "train.bogus=1"])
        XCTAssertThrowsError(try command.run()) { error in
            XCTAssertTrue("\(error)".contains("train.bogus"), "\(error)")
            XCTAssertEqual(LorsCommand.exitCode(for: error).rawValue, 1)
        }
    }

    func testTensorBoardCRCAndEncoding() {
        XCTAssertEqual(CRC32C.checksum(Array("123456789".utf8)), 0xE306_9283)
    }
}

/// Records hook calls.
final class RecordingHook: TrainingHook {
    var events: [String] = []
    var losses: [Double] = []
    var evaluationSteps: [Int] = []
    func beforeRun(_ trainer: Trainer) throws { events.append("beforeRun") }
    func beforeEpoch(_ trainer: Trainer) throws { events.append("beforeEpoch") }
    func afterIteration(_ trainer: Trainer, _ result: StepResult) throws {
        events.append("afterIteration")
        losses.append(result.loss)
    }
    func afterEpoch(_ trainer: Trainer) throws { events.append("afterEpoch") }
    func afterEvaluation(_ trainer: Trainer, _ result: EvaluationResult) throws { evaluationSteps.append(result.step) }
    func afterRun(_ trainer: Trainer) throws { events.append("afterRun") }
}

/// Asks the trainer to stop after step `step` (what a signal hook does).
final class StopAtStep: TrainingHook {
    let step: Int
    init(_ step: Int) { self.step = step }
    func afterIteration(_ trainer: Trainer, _ result: StepResult) throws {
        if result.step == step { trainer.requestStop("test stop") }
    }
}

/// Reads TFRecord framing and verifies both masked CRC-32Cs of every record.
enum TFRecordReader {
    struct Corrupt: Error {}
    static func records(_ data: Data) throws -> [Data] {
        let bytes = [UInt8](data)
        var out: [Data] = [], offset = 0
        func u32(_ at: Int) -> UInt32 { (0..<4).reduce(0) { $0 | UInt32(bytes[at + $1]) << (8 * $1) } }
        while offset < bytes.count {
            guard offset + 12 <= bytes.count else { throw Corrupt() }
            let lengthBytes = Array(bytes[offset..<(offset + 8)])
            let length = Int((0..<8).reduce(UInt64(0)) { $0 | UInt64(lengthBytes[$1]) << (8 * $1) })
            guard CRC32C.masked(lengthBytes) == u32(offset + 8), offset + 16 + length <= bytes.count else { throw Corrupt() }
            let payload = Array(bytes[(offset + 12)..<(offset + 12 + length)])
            guard CRC32C.masked(payload) == u32(offset + 12 + length) else { throw Corrupt() }
            out.append(Data(payload))
            offset += 16 + length
        }
        return out
    }
}
