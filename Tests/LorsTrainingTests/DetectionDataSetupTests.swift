import Foundation
import XCTest
import LorsConfig
import LorsData
import LorsDetection
import LorsTestSupport
import LorsTraining
@testable import LorsCLI

/// The detection data of a config (`DetectionDataSetup`) on a small set made as `lors make-detection` makes it: the
/// same indexes, sampler and batches as the parts built by hand, errors that name the path, the key and the command
/// that makes the set; `lors-bench data --config` on that set; `lors config`, `lors params` and the training refusal
/// for every shipped config.
final class DetectionDataSetupTests: XCTestCase {
    static let fashionMNIST = "/usr/share/datasets/fashion-mnist"
    static let root: URL = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url
    }()
    static let config = root.appendingPathComponent("configs/fmnist_det_adamixer.yaml").path

    /// One small set for the whole class: 10 training and 5 validation canvases of 48 px, JPEG.
    nonisolated(unsafe) static var setDirectory = ""

    override class func setUp() {
        super.setUp()
        setDirectory = (NSTemporaryDirectory() as NSString).appendingPathComponent("lors-detsetup-\(UUID().uuidString.prefix(8))")
        var options = DetectionSynthesis.Options(outputDirectory: setDirectory)
        options.trainImages = 10
        options.valImages = 5
        options.size = 48
        options.seed = 4
        options.format = .jpeg
        options.fashionMNISTRoot = fashionMNIST
        do { _ = try DetectionSynthesis.generate(options) } catch { setDirectory = "failed: \(error)" }
    }

    override class func tearDown() {
        try? FileManager.default.removeItem(atPath: setDirectory)
        super.tearDown()
    }

    private func settings(_ overrides: [String], config: String = DetectionDataSetupTests.config) throws -> RunSettings {
        XCTAssertFalse(Self.setDirectory.hasPrefix("failed"), Self.setDirectory)
        return RunSettings(try ConfigLoader(schema: .lors).load(file: config, overrides: ["data.root=\(Self.setDirectory)"] + overrides))
    }

    private func drain(_ loader: DetectionLoader) throws -> [DetectionBatch] {
        var out: [DetectionBatch] = []
        while let batch = try loader.next() { out.append(batch) }
        return out
    }

    private func assertSame(_ a: DetectionBatch, _ b: DetectionBatch, _ message: String, line: UInt = #line) {
        XCTAssertEqual(a.imageIndices, b.imageIndices, message, line: line)
        XCTAssertEqual(a.images.shape, b.images.shape, message, line: line)
        XCTAssertTrue(a.images.toArray() == b.images.toArray(), "pixels: \(message)", line: line)
        XCTAssertEqual(a.boxes, b.boxes, message, line: line)
        XCTAssertEqual(a.labels, b.labels, message, line: line)
        XCTAssertEqual(a.flipped, b.flipped, message, line: line)
    }

    func testBatchesEqualThePartsBuiltByHand() throws {
        let s = try settings(["seed=3", "train.batch_size=4", "eval.test_batch_size=2", "data.num_workers=2",
                              "data.pipeline=multiscale_crop", "data.max_test_samples=3"])
        let setup = try DetectionDataSetup(s)
        let dir = Self.setDirectory

        let trainIndex = try COCODetectionIndex(path: dir + "/annotations/instances_train.json",
                                                options: .init(filterEmptyGT: true, minImageSize: 32))
        let valIndex = try COCODetectionIndex(path: dir + "/annotations/instances_val.json", options: .test)
        XCTAssertEqual(setup.trainIndex, trainIndex)
        XCTAssertEqual(setup.valIndex, valIndex)
        XCTAssertEqual(setup.trainCount, trainIndex.count)
        XCTAssertEqual(setup.valCount, 3, "data.max_test_samples")
        XCTAssertEqual(setup.numWorkers, 2)
        // The config's data.img_scale [256, 256] reaches both pipelines.
        XCTAssertEqual(setup.train.pipeline, DetectionPipeline(.multiscaleCrop, longSide: 256, shortSide: 256))
        XCTAssertEqual(setup.val.pipeline, DetectionPipeline(.test, longSide: 256, shortSide: 256))
        XCTAssertEqual(setup.train.normalization, .imagenet)

        let sampler = DistributedSampler(groups: DistributedSampler.orientationGroups(widths: trainIndex.widths, heights: trainIndex.heights),
                                         globalBatchSize: 4, seed: 3)
        XCTAssertEqual(setup.sampler.batches(epoch: 1), sampler.batches(epoch: 1))
        XCTAssertEqual(setup.batchesPerEpoch, sampler.batchesPerEpoch)

        let train = DetectionBatchAssembler(index: trainIndex, imageDirectory: dir + "/train",
                                            pipeline: DetectionPipeline(.multiscaleCrop, longSide: 256, shortSide: 256), seed: 3)
        let globals = sampler.batches(epoch: 1)
        let got = try drain(setup.trainLoader(epoch: 1, rank: 1, worldSize: 2))
        XCTAssertEqual(got.count, globals.count)
        for (batch, global) in zip(got, globals) {
            assertSame(batch, try train.assemble(global, epoch: 1, rank: 1, worldSize: 2), "train \(global)")
        }
        // A resumed epoch starts at its batch.
        let resumed = try drain(setup.trainLoader(epoch: 1, firstBatch: 1, rank: 1, worldSize: 2))
        XCTAssertEqual(resumed.map(\.imageIndices), Array(got.dropFirst()).map(\.imageIndices))

        let val = DetectionBatchAssembler(index: valIndex, imageDirectory: dir + "/val",
                                          pipeline: DetectionPipeline(.test, longSide: 256, shortSide: 256), seed: 3)
        let valBatches = try drain(setup.valLoader())
        XCTAssertEqual(valBatches.map(\.imageIndices), [[0, 1], [2]])
        for batch in valBatches {
            assertSame(batch, try val.assemble(batch.imageIndices, epoch: 0), "val \(batch.imageIndices)")
        }
    }

    func testSettingsReachTheParts() throws {
        let s = try settings(["data.filter_empty_gt=false", "data.skip_bad_images=true", "data.max_train_samples=4",
                              "data.mean=[0.5]", "data.std=[0.25]", "data.pipeline=standard"])
        let setup = try DetectionDataSetup(s)
        XCTAssertFalse(setup.trainIndex.options.filterEmptyGT)
        XCTAssertEqual(setup.trainIndex.options.minImageSize, 32)
        XCTAssertTrue(setup.train.skipBadImages && setup.val.skipBadImages)
        XCTAssertEqual(setup.train.pipeline, DetectionPipeline(.standard, longSide: 256, shortSide: 256))
        XCTAssertEqual(setup.trainCount, 4)
        XCTAssertEqual(setup.sampler.datasetSize, 4)
        XCTAssertEqual(setup.train.normalization, DetectionNormalization(mean: [127.5, 127.5, 127.5], std: [63.75, 63.75, 63.75]))
        XCTAssertEqual(setup.numWorkers, 2, "configs/_base_/fmnist_det.yaml")

        // A bad image is replaced, not an error.
        let first = setup.sampler.batches(epoch: 0)[0][0]
        try FileManager.default.copyItem(atPath: setup.train.path(first), toPath: setup.train.path(first) + ".bak")
        defer {
            try? FileManager.default.removeItem(atPath: setup.train.path(first))
            try? FileManager.default.moveItem(atPath: setup.train.path(first) + ".bak", toPath: setup.train.path(first))
        }
        try Data("not an image".utf8).write(to: URL(fileURLWithPath: setup.train.path(first)))
        let loader = setup.trainLoader(epoch: 0)
        _ = try drain(loader)
        XCTAssertEqual(loader.skippedImages, 1)
        let strict = try DetectionDataSetup(try settings(["data.skip_bad_images=false"]))
        XCTAssertThrowsError(try drain(strict.trainLoader(epoch: 0))) { error in
            XCTAssertTrue("\(error)".contains(strict.train.path(first)), "\(error)")
        }
    }

    func testErrorsNameThePathTheKeyAndTheCommand() throws {
        let missing = (NSTemporaryDirectory() as NSString).appendingPathComponent("lors-no-such-set-\(UUID().uuidString.prefix(8))")
        let s = try settings(["data.root=\(missing)"])
        XCTAssertThrowsError(try DetectionDataSetup(s)) { error in
            let message = "\(error)"
            XCTAssertTrue(message.contains(missing + "/annotations/instances_train.json"), message)
            XCTAssertTrue(message.contains("data.train_annotations"), message)
            XCTAssertTrue(message.contains("lors make-detection --out \(missing)"), message)
        }
        // Validation annotations, image directories.
        let badVal = try settings(["data.val_annotations=annotations/nothing.json"])
        XCTAssertThrowsError(try DetectionDataSetup(badVal)) { error in
            XCTAssertTrue("\(error)".contains(Self.setDirectory + "/annotations/nothing.json (data.val_annotations)"), "\(error)")
        }
        let badImages = try settings(["data.val_images=/nonexistent/val"])
        XCTAssertThrowsError(try DetectionDataSetup(badImages)) { error in
            XCTAssertTrue("\(error)".contains("/nonexistent/val (data.val_images)"), "\(error)")
        }
        // COCO has no command that makes it.
        let coco = try settings(["data.root=\(missing)", "data.dataset=coco"])
        XCTAssertThrowsError(try DetectionDataSetup(coco)) { error in
            XCTAssertTrue("\(error)".contains("data.train_annotations"), "\(error)")
            XCTAssertFalse("\(error)".contains("make-detection"), "\(error)")
        }
        // A malformed file names itself and the key.
        let bad = missing + "-bad.json"
        try Data("{\"images\": [".utf8).write(to: URL(fileURLWithPath: bad))
        defer { try? FileManager.default.removeItem(atPath: bad) }
        XCTAssertThrowsError(try DetectionDataSetup(try settings(["data.train_annotations=\(bad)"]))) { error in
            XCTAssertTrue("\(error)".contains(bad) && "\(error)".contains("data.train_annotations"), "\(error)")
        }
        // Classes and dataset.
        XCTAssertThrowsError(try DetectionDataSetup(try settings(["model.adamixer.num_classes=80"]))) { error in
            XCTAssertTrue("\(error)".contains("model.adamixer.num_classes") && "\(error)".contains("80"), "\(error)")
        }
        XCTAssertThrowsError(try DetectionDataSetup(try settings(["data.dataset=fashion_mnist"]))) { error in
            XCTAssertTrue("\(error)".contains("data.dataset: 'fashion_mnist' is not a detection set"), "\(error)")
        }
    }

    /// `lors-bench data --config` on the small set: decode + the config's pipeline with 1 and 2 workers.
    func testBenchTimesTheConfigsPipeline() throws {
        let bench = try builtExecutable("lors-bench")
        let run = try runProcess(bench, ["data", "--config", Self.config, "--set", "data.root=\(Self.setDirectory)",
                                         "--set", "train.batch_size=2", "--set", "data.pipeline=multiscale_crop", "--limit", "3", "--json"])
        XCTAssertEqual(run.status, 0, run.stderr)
        let stdout = Data(run.stdout.utf8)
        let report = try XCTUnwrap(try JSONSerialization.jsonObject(with: stdout) as? [String: Any])
        XCTAssertEqual(report["dataset"] as? String, "fmnist_det")
        XCTAssertEqual(report["data_pipeline"] as? String, "multiscale_crop")
        XCTAssertEqual(report["images"] as? Int, 4, "whole batches of 2 until at least 3 images")
        XCTAssertEqual(report["batches"] as? Int, 2)
        let rates = try XCTUnwrap(report["pipeline"] as? [[String: Any]])
        XCTAssertEqual(rates.compactMap { $0["workers"] as? Int }, [1, 2])
        XCTAssertTrue(rates.allSatisfy { ($0["images_per_s"] as? Double ?? 0) > 0 }, "\(rates)")

        // Its missing set: the error names the file, the key and the command.
        let failing = try runProcess(bench, ["data", "--config", Self.config, "--set", "data.root=/nonexistent/fmnist_det"])
        let message = failing.stderr
        XCTAssertNotEqual(failing.status, 0)
        XCTAssertTrue(message.contains("/nonexistent/fmnist_det/annotations/instances_train.json (data.train_annotations)")
                      && message.contains("lors make-detection --out /nonexistent/fmnist_det"), message)
    }

    /// Every shipped config resolves (`lors config`); the detection set's configs build their models (`lors params`)
    /// and are refused by `lors train` before any data is read.
    func testShippedConfigsLoadAndTheDetectionConfigsNameAMissingSet() throws {
        let configs = Self.root.appendingPathComponent("configs").path
        let names = try FileManager.default.contentsOfDirectory(atPath: configs).filter { $0.hasSuffix(".yaml") }.sorted()
        XCTAssertTrue(names.contains("fmnist_det_adamixer.yaml") && names.contains("fmnist_det_adamixer_lors.yaml"), "\(names)")
        for name in names {
            var command = try LorsCommand.parseAsRoot(["config", configs + "/" + name])
            XCTAssertNoThrow(try command.run(), name)
        }
        for name in ["fmnist_det_adamixer", "fmnist_det_adamixer_lors"] {
            let params = try XCTUnwrap(try LorsCommand.parseAsRoot(["params", configs + "/\(name).yaml", "--json"]) as? ParamsCommand)
            let object = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(try params.output().utf8)) as? [String: Any])
            XCTAssertGreaterThan(object["total"] as? Int ?? 0, 0, name)
            let work = (NSTemporaryDirectory() as NSString).appendingPathComponent("lors-detsetup-work-\(UUID().uuidString.prefix(8))")
            var train = try LorsCommand.parseAsRoot(["train", configs + "/\(name).yaml", "--work-dir", work,
                                                     "--set", "data.root=/nonexistent/fmnist_det"])
            XCTAssertThrowsError(try train.run()) { error in
                XCTAssertTrue("\(error)".contains("/nonexistent/fmnist_det/annotations/instances_train.json (data.train_annotations) does not exist"),
                              "\(error)")
            }
            let log = (try? String(contentsOfFile: work + "/log.txt", encoding: .utf8)) ?? ""
            XCTAssertTrue(log.contains("lors make-detection --out /nonexistent/fmnist_det"), "the log says why the run stopped: \(log)")
            try? FileManager.default.removeItem(atPath: work)
        }
    }
}
