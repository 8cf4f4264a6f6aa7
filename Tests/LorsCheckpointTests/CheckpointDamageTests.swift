import Foundation
import LorsCheckpoint
import LorsModels
import LorsNN
import LorsOptim
import LorsTensor
import XCTest

final class CheckpointDamageTests: XCTestCase {
    private var work = ""
    override func setUpWithError() throws { work = try temporaryDirectory(name) }
    override func tearDown() { try? FileManager.default.removeItem(atPath: work) }

    /// Two checkpoints (steps 1 and 2); returns the directory and the model.
    private func twoCheckpoints() throws -> (CheckpointDirectory, VisionTransformer, AdamW, [String]) {
        var warnings: [String] = []
        let directory = CheckpointDirectory(workDirectory: work, warn: { warnings.append($0) })
        let (model, optimizer) = makeTrainedModel()
        try saveCheckpoint(directory, step: 1, model: model, optimizer: optimizer)
        model.namedParameters()[0].1.fill(3)
        try saveCheckpoint(directory, step: 2, model: model, optimizer: optimizer)
        XCTAssertEqual(directory.latestName(), "step_00000002.h5")
        _ = warnings
        return (directory, model, optimizer, warnings)
    }

    func testAutoResumeUsesLatestWhenIntact() throws {
        let (directory, _, _, _) = try twoCheckpoints()
        let choice = try XCTUnwrap(try directory.resolve(.auto))
        XCTAssertEqual(choice.step, 2)
        XCTAssertEqual(choice.warnings, [])
        XCTAssertNil(try directory.resolve(.none))
        XCTAssertEqual(try directory.resolve(ResumeMode(argument: directory.path(of: "step_00000001.h5")))?.step, 1)
        XCTAssertNil(try CheckpointDirectory(workDirectory: work + "/empty").resolve(.auto))
    }

    func testTruncatedLatestFallsBackToPreviousWithWarning() throws {
        let (directory, _, _, _) = try twoCheckpoints()
        try truncate(directory.path(of: "step_00000002.h5"), keepingFraction: 0.6)
        var warnings: [String] = []
        directory.warn = { warnings.append($0) }
        let choice = try XCTUnwrap(try directory.resolve(.auto))
        XCTAssertEqual(choice.step, 1)
        XCTAssertEqual(choice.path, directory.path(of: "step_00000001.h5"))
        XCTAssertTrue(warnings.contains { $0.contains("step_00000002.h5") && $0.contains("damaged") }, "\(warnings)")

        let error = checkpointError { _ = try CheckpointReader(path: directory.path(of: "step_00000002.h5")) }
        guard case .truncated? = error else { return XCTFail("expected .truncated, got \(String(describing: error))") }
        // An explicit path does not fall back.
        XCTAssertNotNil(checkpointError { _ = try directory.resolve(.path(directory.path(of: "step_00000002.h5"))) })
    }

    func testFlippedByteInLatestFallsBackAndNamesTheDataset() throws {
        let (directory, model, _, _) = try twoCheckpoints()
        let (name, tensor) = model.namedParameters().first { $0.0 == "blocks.1.mlp.fc1.weight" }!
        try flipByte(in: directory.path(of: "step_00000002.h5"), matching: Array(tensor.toArray()[0..<8]))
        var warnings: [String] = []
        directory.warn = { warnings.append($0) }
        XCTAssertEqual(try directory.resolve(.auto)?.step, 1)
        XCTAssertTrue(warnings.contains { $0.contains("/model/\(name)") }, "\(warnings)")

        let reader = try CheckpointReader(path: directory.path(of: "step_00000002.h5"))
        let (fresh, _) = makeTrainedModel(steps: 0)
        let error = checkpointError { try reader.loadModel(into: fresh) }
        guard case .checksumMismatch(_, let dataset, _, _)? = error else { return XCTFail("got \(String(describing: error))") }
        XCTAssertEqual(dataset, "/model/\(name)")
        XCTAssertTrue("\(error!)".contains("/model/\(name)"))

        let inspected = checkpointError { _ = try CheckpointInspector.inspect(path: reader.path) }
        guard case .damaged(_, let problems)? = inspected else { return XCTFail("got \(String(describing: inspected))") }
        XCTAssertEqual(problems.count, 1)
        let report = try CheckpointInspector.inspect(path: reader.path, throwIfDamaged: false)
        XCTAssertFalse(report.isIntact)
        XCTAssertEqual(report.datasets.filter { !$0.checksumOK }.map(\.path), ["/model/\(name)"])
    }

    func testAllCheckpointsDamagedIsAnError() throws {
        let (directory, _, _, _) = try twoCheckpoints()
        try truncate(directory.path(of: "step_00000001.h5"), keepingFraction: 0.5)
        try truncate(directory.path(of: "step_00000002.h5"), keepingFraction: 0.5)
        directory.warn = { _ in }
        let error = checkpointError { _ = try directory.resolve(.auto) }
        guard case .noUsableCheckpoint? = error else { return XCTFail("got \(String(describing: error))") }
    }

    func testMissingDatasetIsNamed() throws {
        // A checkpoint of a model without the classifier head loaded into one with it.
        let (model, _) = makeTrainedModel()
        let path = work + "/partial.h5"
        let writer = CheckpointWriter(path: path, faultInjection: nil)
        for (name, tensor) in model.namedParameters() where !name.hasPrefix("head.") {
            writer.add(CheckpointLayout.modelPath(name), tensor: tensor)
        }
        try writer.write(metadata: makeMetadata(step: 1))
        let error = checkpointError { try CheckpointReader(path: path).loadModel(into: model) }
        guard case .missingDataset(_, let dataset)? = error else { return XCTFail("got \(String(describing: error))") }
        XCTAssertEqual(dataset, "/model/head.weight")
        XCTAssertTrue("\(error!)".contains("missing dataset '/model/head.weight'"))
    }

    func testShapeMismatchNamesDatasetAndBothShapes() throws {
        let (wide, wideOptimizer) = makeTrainedModel(embedDim: 16)
        let directory = CheckpointDirectory(workDirectory: work)
        let commit = try saveCheckpoint(directory, step: 1, model: wide, optimizer: wideOptimizer)
        let (narrow, _) = makeTrainedModel(embedDim: 8, steps: 0)
        let before = narrow.namedParameters().map { bits($0.1) }
        let error = checkpointError { try CheckpointReader(path: commit.path).loadModel(into: narrow) }
        guard case .shapeMismatch(_, let dataset, let expected, let found)? = error else { return XCTFail("got \(String(describing: error))") }
        XCTAssertTrue(dataset.hasPrefix("/model/"))
        XCTAssertNotEqual(expected, found)
        XCTAssertTrue("\(error!)".contains(dataset) && "\(error!)".contains("\(expected)") && "\(error!)".contains("\(found)"), "\(error!)")
        // Nothing was assigned.
        XCTAssertEqual(narrow.namedParameters().map { bits($0.1) }, before)
    }

    func testStrictLoadRejectsExtraDatasets() throws {
        let (model, optimizer) = makeTrainedModel()
        let path = work + "/extra.h5"
        let writer = CheckpointWriter(path: path, faultInjection: nil)
        writer.addModel(model)
        writer.add("/model/extra.weight", shape: [2], values: [1, 2])
        try writer.write(metadata: makeMetadata(step: 1), optimizer: OptimizerMetadata(describing: optimizer))
        let error = checkpointError { try CheckpointReader(path: path).loadModel(into: model) }
        XCTAssertEqual(error, .unexpectedDatasets(file: path, datasets: ["/model/extra.weight"]))
        try CheckpointReader(path: path).loadModel(into: model, strict: false)
    }

    func testIncompleteFileIsNotLoaded() throws {
        // A file that the writer never finished (created by HDF5 but without /meta complete=1).
        let path = work + "/step_00000003.h5.tmp"
        XCTAssertTrue(FileManager.default.createFile(atPath: path, contents: Data()))
        let error = checkpointError { _ = try CheckpointReader(path: path) }
        guard case .truncated? = error else { return XCTFail("got \(String(describing: error))") }
    }
}
