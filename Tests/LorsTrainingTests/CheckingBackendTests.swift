import Foundation
import XCTest
import LorsCheckpoint
import LorsCLI
import LorsTensor

/// The whole product on `CheckingBackend`, whose tensor memory faults when dereferenced outside the backend: training
/// steps, evaluation, checkpoint writes, a resume, `lors eval` and `lors export` through the `lors` commands, in
/// process. Any code above the seam that still reads tensor memory as host memory crashes this test; every result
/// must be bitwise the CPU backend's.
final class CheckingBackendTests: XCTestCase {
    var directory = ""

    override func setUpWithError() throws {
        directory = (NSTemporaryDirectory() as NSString).appendingPathComponent("lors-checking-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    override func tearDown() {
        Backends.setCurrent(CPUBackend.shared)
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// What one backend produced.
    struct Outcome: Equatable {
        /// train and eval records of metrics.jsonl (timing fields dropped), both runs.
        var metrics: [[String: String]]
        /// `lors eval --json` of the last checkpoint.
        var evaluation: [String: String]
        /// The merged export and its reference logits, as bytes.
        var export: Data
        var referenceLogits: Data
    }

    /// Trains 4 steps (checkpoints at 2 and 4, evaluation at the end), resumes to 6, evaluates and exports the last
    /// checkpoint, all through `lors` commands. Every backend runs in the same (emptied) work directory, so the paths
    /// recorded in the outputs agree.
    /// With `checkpoints` false (a setting that writes none) only the 4 training steps and their evaluation run.
    private func everything(on backend: any Backend, trainArguments: [String] = [], checkpoints: Bool = true) throws -> Outcome {
        Backends.setCurrent(backend)
        defer { Backends.setCurrent(CPUBackend.shared) }
        let work = (directory as NSString).appendingPathComponent("work")
        try? FileManager.default.removeItem(atPath: work)
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        let file = (work as NSString).appendingPathComponent("tiny.yaml")
        try EndToEndTests.tinyYAML.write(toFile: file, atomically: true, encoding: .utf8)
        let lors = ["model.lors.enabled=true", "model.lors.rank=2", "model.lors.attn_groups=[1, 2]", "model.lors.ffn_groups=[2, 1]"]
        func train(_ steps: Int) throws {
            var command = try LorsCommand.parseAsRoot(["train", file, "--work-dir", work, "--threads", "1",
                                                       "--set", "train.max_steps=\(steps)", "--set", "checkpoint.interval_steps=2"]
                                                      + lors.flatMap { ["--set", $0] } + trainArguments)
            try command.run()
        }
        try train(4)
        guard checkpoints else {
            let metrics = try metricRecords(work)
            XCTAssertEqual(metrics.filter { $0["type"] == "train" }.compactMap { $0["step"] }, ["1", "2", "3", "4"])
            return Outcome(metrics: metrics, evaluation: [:], export: Data(), referenceLogits: Data())
        }
        try train(6)
        let log = try String(contentsOfFile: work + "/log.txt", encoding: .utf8)
        XCTAssertTrue(log.contains("resumed from") && log.contains("step 4"), "the second run resumes: \(log)")
        let last = CheckpointDirectory(workDirectory: work).path(of: "step_00000006.h5")
        XCTAssertTrue(FileManager.default.fileExists(atPath: last))

        let printed = try capturingStandardOutput {
            var eval = try LorsCommand.parseAsRoot(["eval", file, "--checkpoint", last, "--json", "--threads", "1"]
                                                   + lors.flatMap { ["--set", $0] })
            try eval.run()
        }
        let evaluation = try flatten(XCTUnwrap(printed.split(separator: "\n").last.map(String.init)))
        XCTAssertEqual(evaluation["type"], "eval")

        var export = try LorsCommand.parseAsRoot(["export", last, "--out", work + "/model.safetensors", "--merge-lors",
                                                  "--format", "safetensors", "--reference-logits", work + "/reference.safetensors"])
        try export.run()

        let metrics = try metricRecords(work)
        XCTAssertEqual(metrics.filter { $0["type"] == "train" }.compactMap { $0["step"] }, ["1", "2", "3", "4", "5", "6"])
        return Outcome(metrics: metrics, evaluation: evaluation,
                       export: try Data(contentsOf: URL(fileURLWithPath: work + "/model.safetensors")),
                       referenceLogits: try Data(contentsOf: URL(fileURLWithPath: work + "/reference.safetensors")))
    }

    func testTrainingEvaluationCheckpointsResumeAndExportMatchTheCPUBackendBitwise() throws {
        let allocationsBefore = CheckingBackend.shared.memoryStatistics.freshAllocations
        let checking = try everything(on: CheckingBackend.shared)
        XCTAssertGreaterThan(CheckingBackend.shared.memoryStatistics.freshAllocations - allocationsBefore, 1000,
                             "the run allocated its tensors on the checking backend")
        let cpu = try everything(on: CPUBackend.shared)
        XCTAssertEqual(checking.metrics, cpu.metrics)
        XCTAssertEqual(checking.evaluation, cpu.evaluation)
        XCTAssertEqual(checking.export, cpu.export, "merged export differs")
        XCTAssertEqual(checking.referenceLogits, cpu.referenceLogits, "reference logits differ")
        XCTAssertFalse(cpu.metrics.isEmpty)
    }

    /// The same on 2 simulated data-parallel ranks with small buckets: the start-up broadcast stages whole tensors,
    /// the gradient all-reduce stages each bucket through host memory while backward runs.
    func testSimulatedRanksMatchTheCPUBackendBitwise() throws {
        let ranks = ["--simulate-ranks", "2", "--set", "dist.bucket_cap_mb=0.002"]
        let checking = try everything(on: CheckingBackend.shared, trainArguments: ranks)
        let log = try String(contentsOfFile: directory + "/work/log.txt", encoding: .utf8)
        XCTAssertTrue(log.contains("(rank 0 of 2)"), log)
        XCTAssertEqual(checking, try everything(on: CPUBackend.shared, trainArguments: ranks))
    }

    /// ZeRO-1 on 2 simulated ranks (which writes no checkpoints): the owners' parameter ranges are broadcast through
    /// staged host ranges.
    func testZeROOneOnSimulatedRanksMatchesTheCPUBackendBitwise() throws {
        let ranks = ["--simulate-ranks", "2", "--set", "dist.zero1=true"]
        let checking = try everything(on: CheckingBackend.shared, trainArguments: ranks, checkpoints: false)
        XCTAssertEqual(checking, try everything(on: CPUBackend.shared, trainArguments: ranks, checkpoints: false))
    }

    /// The train and eval records of `work`/metrics.jsonl, without timing fields.
    private func metricRecords(_ work: String) throws -> [[String: String]] {
        try String(contentsOfFile: work + "/metrics.jsonl", encoding: .utf8).split(separator: "\n")
            .map { try flatten(String($0)) }
            .filter { ["train", "eval"].contains($0["type"]) }
            .map { $0.filter { ["type", "step", "epoch", "loss", "lr", "grad_norm", "top1", "top5"].contains($0.key) } }
    }

    /// A JSON object line with every value as its exact text (doubles by their shortest round-trip spelling).
    private func flatten(_ line: String) throws -> [String: String] {
        let object = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], line)
        return object.mapValues { value in
            if let i = value as? Int { return "\(i)" }
            if let d = value as? Double { return "0x" + String(d.bitPattern, radix: 16) }
            return "\(value)"
        }
    }

    /// Runs `body` with the process's standard output sent to a file and returns what it printed.
    private func capturingStandardOutput(_ body: () throws -> Void) throws -> String {
        let path = (directory as NSString).appendingPathComponent("stdout-\(UUID().uuidString.prefix(8)).txt")
        FileManager.default.createFile(atPath: path, contents: nil)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        fflush(stdout)
        let saved = dup(STDOUT_FILENO)
        dup2(handle.fileDescriptor, STDOUT_FILENO)
        do {
            try body()
        } catch {
            fflush(stdout); dup2(saved, STDOUT_FILENO); close(saved)
            throw error
        }
        fflush(stdout); dup2(saved, STDOUT_FILENO); close(saved)
        try handle.close()
        return try String(contentsOfFile: path, encoding: .utf8)
    }
}
