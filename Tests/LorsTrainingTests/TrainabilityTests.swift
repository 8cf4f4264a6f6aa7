import Foundation
import XCTest
import LorsConfig
import LorsDistributed
import LorsTraining
@testable import LorsCLI

/// `lors train`, `lors-worker` and `lors eval` refuse a model or dataset they cannot train (AdaMixer, COCO) before
/// reading any data, checkpoint or starting any rank, naming the key, the value and what they can train; `lors config`
/// and `lors params` accept every model.
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

    private func assertRefusesModel(_ message: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertTrue(message.contains("model.type: 'adamixer' cannot be trained"), message, file: file, line: line)
        XCTAssertTrue(message.contains("model.type vit"), "names what can be trained: \(message)", file: file, line: line)
    }

    private func assertRefusesDataset(_ message: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertTrue(message.contains("data.dataset: 'coco' cannot be trained"), message, file: file, line: line)
        XCTAssertTrue(message.contains("fashion_mnist, cifar100, synthetic"), "names what can be trained: \(message)",
                      file: file, line: line)
    }

    func testTrainRefusesAdaMixerAndCOCOBeforeAnything() throws {
        let work = directory + "/work"
        // The AdaMixer configs name data/coco, which does not exist: the refusal comes first.
        assertRefusesModel(lorsError(["train", config("adamixer_r50_1x_coco"), "--work-dir", work]))
        assertRefusesModel(lorsError(["train", config("adamixer_r50_lors_1x_coco"), "--work-dir", work, "--simulate-ranks", "2"]))
        // --np: refused before mpirun is looked for or started.
        assertRefusesModel(lorsError(["train", config("adamixer_r50_1x_coco"), "--work-dir", work, "--np", "2"]))
        // A ViT on COCO: the dataset is refused, before its (missing) files are read.
        assertRefusesDataset(lorsError(["train", config("fmnist_vit"), "--work-dir", work, "--set", "data.dataset=coco",
                                        "--set", "data.root=/nonexistent/coco"]))
        XCTAssertFalse(FileManager.default.fileExists(atPath: work), "nothing is written for a refused config")
        // The same ViT on Fashion-MNIST does get to reading its data (the control).
        let missing = lorsError(["train", config("fmnist_vit"), "--work-dir", work, "--set", "data.root=/nonexistent/fmnist"])
        XCTAssertTrue(missing.contains("/nonexistent/fmnist"), missing)
    }

    func testTrainingRunRefusesBeforeCreatingTheWorkDir() throws {
        let work = directory + "/run"
        let adamixer = try ConfigLoader(schema: .lors).load(file: config("adamixer_r50_1x_coco"))
        XCTAssertThrowsError(try TrainingRun(config: adamixer, workDirectory: work)) { error in
            XCTAssertEqual(error as? TrainingError, .unsupported(key: "model.type", value: "adamixer", supported: ["vit"]))
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: work))
        let coco = try ConfigLoader(schema: .lors).load(file: config("fmnist_vit"), overrides: ["data.dataset=coco"])
        XCTAssertThrowsError(try TrainingSetup.datasets(RunSettings(coco))) { error in
            XCTAssertEqual(error as? TrainingError,
                           .unsupported(key: "data.dataset", value: "coco", supported: ["fashion_mnist", "cifar100", "synthetic"]))
        }
    }

    func testWorkerRefusesAdaMixerAndCOCO() throws {
        let work = directory + "/worker"
        for (arguments, check) in [
            (["--config", config("adamixer_r50_1x_coco"), "--work-dir", work], assertRefusesModel),
            (["--config", config("adamixer_r50_1x_coco"), "--eval-checkpoint", directory + "/none.h5"], assertRefusesModel),
            (["--config", config("fmnist_vit"), "--work-dir", work, "--set", "data.dataset=coco"], assertRefusesDataset),
        ] as [([String], (String, StaticString, UInt) -> Void)] {
            let command = try WorkerCommand.parse(arguments)
            XCTAssertThrowsError(try command.train(world: LocalCommunicator())) { error in check("\(error)", #filePath, #line) }
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: work))
    }

    func testEvalRefusesBeforeReadingTheCheckpoint() throws {
        let checkpoint = directory + "/none.h5"  // does not exist: reading it would fail with another error
        assertRefusesModel(lorsError(["eval", config("adamixer_r50_1x_coco"), "--checkpoint", checkpoint]))
        assertRefusesModel(lorsError(["eval", config("adamixer_r50_1x_coco"), "--checkpoint", checkpoint, "--np", "2"]))
        assertRefusesDataset(lorsError(["eval", config("fmnist_vit"), "--checkpoint", checkpoint, "--set", "data.dataset=coco"]))
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
