import Foundation
import LorsCheckpoint
import LorsNative
import LorsTensor
import XCTest

final class CheckpointExportInspectTests: XCTestCase {
    private var work = ""
    override func setUpWithError() throws { work = try temporaryDirectory(name) }
    override func tearDown() { try? FileManager.default.removeItem(atPath: work) }

    /// A minimal safetensors parser written from the format description, independent of `readSafetensors`.
    private func parseSafetensors(_ path: String) throws -> [String: (shape: [Int], values: [Float])] {
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        let length = data.prefix(8).withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }
        XCTAssertEqual((8 + Int(length)) % 8, 0, "header padded to 8 bytes")
        let header = try JSONSerialization.jsonObject(with: data.subdata(in: 8..<(8 + Int(length)))) as! [String: Any]
        var out: [String: (shape: [Int], values: [Float])] = [:]
        var covered = 0
        for (name, value) in header where name != "__metadata__" {
            let entry = value as! [String: Any]
            XCTAssertEqual(entry["dtype"] as? String, "F32")
            let offsets = entry["data_offsets"] as! [Int]
            covered += offsets[1] - offsets[0]
            let raw = data.subdata(in: (8 + Int(length) + offsets[0])..<(8 + Int(length) + offsets[1]))
            let values = raw.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
            out[name] = (entry["shape"] as! [Int], values)
        }
        XCTAssertEqual(covered, data.count - 8 - Int(length), "data offsets cover the byte buffer")
        return out
    }

    func testSafetensorsAndHDF5ExportOfCheckpointModel() throws {
        let (model, optimizer) = makeTrainedModel()
        let commit = try saveCheckpoint(CheckpointDirectory(workDirectory: work), step: 3, model: model, optimizer: optimizer)
        let reader = try CheckpointReader(path: commit.path)
        let tensors = try CheckpointExport.modelTensors(from: reader)
        XCTAssertEqual(tensors.map(\.name), model.namedParameters().map(\.0))

        let safetensors = work + "/model.safetensors"
        try CheckpointExport.export(tensors, to: safetensors, format: .safetensors, metadata: ["format": "pt"])
        let parsed = try parseSafetensors(safetensors)
        XCTAssertEqual(parsed.count, model.namedParameters().count)
        for (name, tensor) in model.namedParameters() {
            XCTAssertEqual(parsed[name]?.shape, tensor.shape, name)
            XCTAssertEqual(parsed[name]?.values.map(\.bitPattern), bits(tensor), name)
        }
        let (readBack, metadata) = try CheckpointExport.readSafetensors(path: safetensors)
        XCTAssertEqual(metadata, ["format": "pt"])
        XCTAssertEqual(readBack.map(\.name), tensors.map(\.name), "data laid out in the given order")

        // A merged-weights style export: any (name, tensor) list.
        let hdf5 = work + "/dense.h5"
        try CheckpointExport.export([("fc.weight", Tensor([1, 2, 3, 4, 5, 6], shape: [2, 3]))], to: hdf5, format: .hdf5)
        let file = try HDF5File(path: hdf5, mode: .readOnly)
        XCTAssertEqual(try file.shape(of: "/fc.weight"), [2, 3])
        XCTAssertEqual(try file.readFloats("/fc.weight"), [1, 2, 3, 4, 5, 6])
        try file.close()

        XCTAssertThrowsError(try CheckpointExport.readSafetensors(path: hdf5))
    }

    func testInspectReportListsEverythingAndRendersJSON() throws {
        let (model, optimizer) = makeTrainedModel()
        let commit = try saveCheckpoint(CheckpointDirectory(workDirectory: work), step: 3, model: model, optimizer: optimizer)
        let report = try CheckpointInspector.inspect(path: commit.path)
        XCTAssertTrue(report.isIntact)
        XCTAssertEqual(report.metaAttributes["step"], "3")
        XCTAssertEqual(report.metaAttributes["format_version"], "1")
        XCTAssertEqual(report.optimizerAttributes["type"], "adamw")
        XCTAssertTrue(report.datasets.allSatisfy(\.checksumOK))
        XCTAssertTrue(report.datasets.contains { $0.path == "/model/head.weight" && $0.shape == [5, 16] && $0.dtype == "float32" })
        XCTAssertTrue(report.text.contains("/optimizer/head.weight/exp_avg"), report.text)
        XCTAssertTrue(report.text.contains("status: OK"))
        let json = try JSONSerialization.jsonObject(with: Data(report.json.utf8)) as! [String: Any]
        XCTAssertEqual(json["intact"] as? Bool, true)
        XCTAssertEqual((json["datasets"] as? [Any])?.count, report.datasets.count)

        try truncate(commit.path, keepingFraction: 0.3)
        let error = checkpointError { _ = try CheckpointInspector.inspect(path: commit.path) }
        guard case .truncated? = error else { return XCTFail("got \(String(describing: error))") }
    }

    func testConfigComparisonReportsDifferingKeys() {
        let stored = "# resolved\ntrain:\n  max_steps: 100\n  batch_size: 64\nmodel:\n  depth: 12\n  milestones: [8, 11]\ndata: {}\n"
        let current = "train:\n  max_steps: 500\n  batch_size: 128\nmodel:\n  depth: 12\n  milestones: [8, 11]\n  lors: true\n"
        XCTAssertEqual(ConfigComparison.flatten(stored)["model.milestones"], "[8, 11]")
        let differences = ConfigComparison.differences(stored: stored, current: current, allowedToChange: ["train.max_steps"])
        XCTAssertEqual(differences.map(\.key), ["data", "model.lors", "train.batch_size"])
        XCTAssertEqual(differences.first { $0.key == "train.batch_size" }, ConfigDifference(key: "train.batch_size", stored: "64", current: "128"))
        XCTAssertNoThrow(try ConfigComparison.check(stored: stored, current: stored.replacingOccurrences(of: "100", with: "7"),
                                                     allowedToChange: ["train.max_steps"]))
        XCTAssertThrowsError(try ConfigComparison.check(stored: stored, current: current, allowedToChange: ["train.max_steps"])) { error in
            XCTAssertTrue("\(error)".contains("train.batch_size: checkpoint 64, now 128"), "\(error)")
        }
    }
}
