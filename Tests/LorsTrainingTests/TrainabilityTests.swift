import Foundation
import XCTest
import LorsConfig
import LorsDistributed
import LorsTraining
@testable import LorsCLI

/// `lors train`, `lors-worker` and `lors eval` refuse a dataset the configured model does not train on (a ViT on COCO,
/// AdaMixer on Fashion-MNIST) before reading any data, checkpoint or starting any rank, naming the key, the value and
/// what the model trains on; a detector whose files are missing names the path, the key and, for the Fashion-MNIST
/// detection set, the command that makes it; `lors config` and `lors params` accept every model.
final class TrainabilityTests: XCTestCase {
    var directory = ""

    override func setUpWithError() throws {
        directory = (NSTemporaryDirectory() as NSString).appendingPathComponent("lors-trainable-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    override func tearDown() { try? FileManager.default.removeItem(atPath: directory) }

    private func config(_ name: String) -> String {
        ParamsTests.root.appendingPathComponent("configs/\(name).yaml").path
    }

    /// The error of running `arguments` through `lors`.
    private func lorsError(_ arguments: [String], file: StaticString = #filePath, line: UInt = #line) -> String {
        do {
            var command = try LorsCommand.parseAsRoot(arguments)
            try command.run()
        } catch {
            return "\(error)"
        }
        XCTFail("lors \(arguments.joined(separator: " ")) did not fail", file: file, line: line)
        return ""
    }

    private func assertRefusesDetectorOnImages(_ message: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertTrue(message.contains("data.dataset: 'fashion_mnist' cannot be trained or evaluated with model.type adamixer"),
                      message, file: file, line: line)
        XCTAssertTrue(message.contains("coco, fmnist_det"), "names what the detector trains on: \(message)", file: file, line: line)
    }

    private func assertRefusesViTOnCOCO(_ message: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertTrue(message.contains("data.dataset: 'coco' cannot be trained or evaluated with model.type vit"), message,
                      file: file, line: line)
        XCTAssertTrue(message.contains("fashion_mnist, cifar100, synthetic"), "names what the ViT trains on: \(message)",
                      file: file, line: line)
    }

    private var detectorOnImages: [String] { ["--set", "data.dataset=fashion_mnist", "--set", "data.root=/nonexistent/fmnist"] }

    func testTrainRefusesMismatchedModelAndDatasetBeforeAnything() throws {
        let work = directory + "/work"
        assertRefusesDetectorOnImages(lorsError(["train", config("adamixer_r50_1x_coco"), "--work-dir", work] + detectorOnImages))
        assertRefusesDetectorOnImages(lorsError(["train", config("adamixer_r50_lors_1x_coco"), "--work-dir", work,
                                                 "--simulate-ranks", "2"] + detectorOnImages))
        // --np: refused before mpirun is looked for or started.
        assertRefusesDetectorOnImages(lorsError(["train", config("adamixer_r50_1x_coco"), "--work-dir", work, "--np", "2"]
                                                + detectorOnImages))
        // A ViT on COCO: the dataset is refused, before its (missing) files are read.
        assertRefusesViTOnCOCO(lorsError(["train", config("fmnist_vit"), "--work-dir", work, "--set", "data.dataset=coco",
                                          "--set", "data.root=/nonexistent/coco"]))
        XCTAssertFalse(FileManager.default.fileExists(atPath: work), "nothing is written for a refused config")
        // The same ViT on Fashion-MNIST does get to reading its data (the control).
        let missing = lorsError(["train", config("fmnist_vit"), "--work-dir", work, "--set", "data.root=/nonexistent/fmnist"])
        XCTAssertTrue(missing.contains("/nonexistent/fmnist"), missing)
    }

    /// A detector config whose set is missing names the file and its key (and, for fmnist_det, `lors make-detection`).
    func testDetectorWithMissingFilesNamesThePathAndKey() throws {
        let work = directory + "/det"
        let coco = lorsError(["train", config("adamixer_r50_1x_coco"), "--work-dir", work, "--set", "data.root=/nonexistent/coco"])
        XCTAssertTrue(coco.contains("/nonexistent/coco/annotations/instances_train2017.json (data.train_annotations) does not exist"), coco)
        let fmnist = lorsError(["train", config("fmnist_det_adamixer"), "--work-dir", work, "--set", "data.root=/nonexistent/det"])
        XCTAssertTrue(fmnist.contains("(data.train_annotations) does not exist"), fmnist)
        XCTAssertTrue(fmnist.contains("lors make-detection --out /nonexistent/det"), fmnist)
    }

    func testTrainingRunRefusesBeforeCreatingTheWorkDir() throws {
        let work = directory + "/run"
        let adamixer = try ConfigLoader(schema: .lors).load(file: config("adamixer_r50_1x_coco"), overrides: ["data.dataset=fashion_mnist"])
        XCTAssertThrowsError(try TrainingRun(config: adamixer, workDirectory: work)) { error in
            XCTAssertEqual(error as? TrainingError, .unsupported(key: "data.dataset", value: "fashion_mnist",
                                                                 supported: ["coco", "fmnist_det"], model: "adamixer"))
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: work))
        let coco = try ConfigLoader(schema: .lors).load(file: config("fmnist_vit"), overrides: ["data.dataset=coco"])
        XCTAssertThrowsError(try TrainingSetup.datasets(RunSettings(coco))) { error in
            XCTAssertEqual(error as? TrainingError, .unsupported(key: "data.dataset", value: "coco",
                                                                 supported: ["fashion_mnist", "cifar100", "synthetic"], model: "vit"))
        }
    }

    func testWorkerRefusesMismatchedModelAndDataset() throws {
        let work = directory + "/worker"
        for (arguments, check) in [
            (["--config", config("adamixer_r50_1x_coco"), "--work-dir", work] + detectorOnImages, assertRefusesDetectorOnImages),
            (["--config", config("adamixer_r50_1x_coco"), "--eval-checkpoint", directory + "/none.h5"] + detectorOnImages,
             assertRefusesDetectorOnImages),
            (["--config", config("fmnist_vit"), "--work-dir", work, "--set", "data.dataset=coco"], assertRefusesViTOnCOCO),
        ] as [([String], (String, StaticString, UInt) -> Void)] {
            let command = try WorkerCommand.parse(arguments)
            XCTAssertThrowsError(try command.train(world: LocalCommunicator())) { error in check("\(error)", #filePath, #line) }
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: work))
    }

    func testEvalRefusesBeforeReadingTheCheckpoint() throws {
        let checkpoint = directory + "/none.h5"  // does not exist: reading it would fail with another error
        assertRefusesDetectorOnImages(lorsError(["eval", config("adamixer_r50_1x_coco"), "--checkpoint", checkpoint] + detectorOnImages))
        assertRefusesDetectorOnImages(lorsError(["eval", config("adamixer_r50_1x_coco"), "--checkpoint", checkpoint, "--np", "2"]
                                                + detectorOnImages))
        assertRefusesViTOnCOCO(lorsError(["eval", config("fmnist_vit"), "--checkpoint", checkpoint, "--set", "data.dataset=coco"]))
        let missing = lorsError(["eval", config("fmnist_vit"), "--checkpoint", checkpoint])
        XCTAssertTrue(missing.contains(checkpoint), "a trainable config gets to the checkpoint: \(missing)")
    }

    func testConfigAndParamsAcceptEveryModel() throws {
        for name in ["adamixer_r50_1x_coco", "adamixer_r50_lors_1x_coco", "fmnist_vit"] {
            var config = try LorsCommand.parseAsRoot(["config", config(name)])
            XCTAssertNoThrow(try config.run())
            let params = try XCTUnwrap(try LorsCommand.parseAsRoot(["params", self.config(name), "--json"]) as? ParamsCommand)
            XCTAssertTrue(try params.output().contains("\"total\""))
        }
    }
}
