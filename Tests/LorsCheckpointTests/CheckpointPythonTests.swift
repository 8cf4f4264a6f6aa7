import Foundation
import LorsCheckpoint
import XCTest

/// Runs `scripts/check_checkpoint.py` (h5py + torch) on a checkpoint and its safetensors export; fails when python3
/// lacks h5py or torch (cluster/test.sh installs them).
final class CheckpointPythonTests: XCTestCase {
    private func run(_ arguments: [String]) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return (process.terminationStatus, output)
    }

    func testPythonCheckScriptReadsCheckpointAndSafetensors() throws {
        let probe = try? run(["python3", "-c", "import h5py, numpy, torch"])
        guard probe?.status == 0 else {
            let reason = probe.map { $0.output.split(separator: "\n").last.map(String.init) ?? "exit status \($0.status)" }
            XCTFail("python3 with h5py, numpy and torch is required (python3 -m pip install h5py numpy torch): "
                + (reason ?? "python3 did not start"))
            return
        }
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("scripts/check_checkpoint.py").path
        let work = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: work) }
        let (model, optimizer) = makeTrainedModel()
        let commit = try saveCheckpoint(CheckpointDirectory(workDirectory: work), step: 7, model: model, optimizer: optimizer)
        let safetensors = work + "/model.safetensors"
        try CheckpointExport.export(try CheckpointExport.modelTensors(from: CheckpointReader(path: commit.path)), to: safetensors, format: .safetensors)

        let good = try run(["python3", script, commit.path, "--safetensors", safetensors, "--expect", "head.weight=5,16"])
        XCTAssertEqual(good.status, 0, good.output)
        XCTAssertTrue(good.output.contains("every crc32 verified"), good.output)

        let wrongShape = try run(["python3", script, commit.path, "--expect", "head.weight=5,8"])
        XCTAssertNotEqual(wrongShape.status, 0)
        XCTAssertTrue(wrongShape.output.contains("/model/head.weight"), wrongShape.output)

        try flipByte(in: commit.path, matching: Array(model.namedParameters().first { $0.0 == "head.weight" }!.1.toArray()[0..<8]))
        let damaged = try run(["python3", script, commit.path])
        XCTAssertNotEqual(damaged.status, 0)
        XCTAssertTrue(damaged.output.contains("checksum mismatch in /model/head.weight"), damaged.output)
    }
}
