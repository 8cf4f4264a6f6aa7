import Foundation
import LorsCheckpoint
import LorsModels
import LorsNN
import LorsOptim
import LorsTensor
import XCTest

final class CheckpointDirectoryTests: XCTestCase {
    private var work = ""
    override func setUpWithError() throws { work = try temporaryDirectory(name) }
    override func tearDown() { try? FileManager.default.removeItem(atPath: work) }

    func testFileNamesAndResumeModes() {
        XCTAssertEqual(CheckpointDirectory.fileName(step: 42), "step_00000042.h5")
        XCTAssertEqual(CheckpointDirectory.step(fromFileName: "step_00000042.h5"), 42)
        XCTAssertNil(CheckpointDirectory.step(fromFileName: "step_00000042.h5.tmp"))
        XCTAssertEqual(ResumeMode(argument: "auto"), .auto)
        XCTAssertEqual(ResumeMode(argument: "none"), ResumeMode.none)
        XCTAssertEqual(ResumeMode(argument: "x/step_1.h5"), .path("x/step_1.h5"))
    }

    func testKeepLastRotationNeverDeletesLatestOrBest() throws {
        let directory = CheckpointDirectory(workDirectory: work)
        let (model, optimizer) = makeTrainedModel(steps: 1)
        // Metrics: step 2 is the best (higher is better) and stays after rotation.
        let metrics: [Int: Double] = [1: 0.5, 2: 0.9, 3: 0.7, 4: 0.8, 5: 0.6]
        var bestFlags: [Bool] = []
        for step in 1...5 {
            bestFlags.append(try saveCheckpoint(directory, step: step, model: model, optimizer: optimizer, metric: metrics[step], keepLast: 2).isBest)
        }
        XCTAssertEqual(bestFlags, [true, true, false, false, false])
        XCTAssertEqual(directory.bestName(), "step_00000002.h5")
        XCTAssertEqual(directory.latestName(), "step_00000005.h5")
        XCTAssertEqual(directory.checkpointFiles().map(\.step), [2, 4, 5])
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: directory.directory).sorted()
        XCTAssertEqual(leftovers, ["best", "latest", "step_00000002.h5", "step_00000004.h5", "step_00000005.h5"])

        // Lower is better: a smaller metric takes over best.
        let commit = try directory.save(metadata: makeMetadata(step: 6, metric: 0.1), higherIsBetter: false, keepLast: 1) { writer in
            writer.addModel(model)
        }
        XCTAssertTrue(commit.isBest)
        XCTAssertEqual(Set(commit.removed), ["step_00000002.h5", "step_00000004.h5", "step_00000005.h5"])
        XCTAssertEqual(directory.checkpointFiles().map(\.step), [6])
    }

    func testFailedWriteLeavesNoFileUnderTheFinalName() throws {
        let directory = CheckpointDirectory(workDirectory: work)
        let (model, optimizer) = makeTrainedModel(steps: 1)
        try saveCheckpoint(directory, step: 1, model: model, optimizer: optimizer)
        struct Boom: Error {}
        XCTAssertThrowsError(try directory.save(metadata: makeMetadata(step: 2)) { writer in
            writer.addModel(model)
            writer.addShard("/optimizer/x/exp_avg", shape: [4], range: 0..<2, values: [1, 2])   // does not tile
        })
        XCTAssertFalse(FileManager.default.fileExists(atPath: directory.path(of: "step_00000002.h5")))
        XCTAssertEqual(directory.latestName(), "step_00000001.h5")
        XCTAssertEqual(try directory.resolve(.auto)?.step, 1)
    }

    /// The parent half: runs the child half in a separate process that is SIGKILLed in the middle of writing step 2.
    func testProcessKilledDuringWriteLeavesPreviousCheckpointIntact() throws {
        let directory = CheckpointDirectory(workDirectory: work)
        let (model, optimizer) = makeTrainedModel(steps: 1)
        try saveCheckpoint(directory, step: 1, model: model, optimizer: optimizer)
        let latestBefore = try Data(contentsOf: URL(fileURLWithPath: directory.path(of: "latest")))

        let executable = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")
        let child = Process()
        child.executableURL = URL(fileURLWithPath: executable)
        child.arguments = ["LorsCheckpointTests.CheckpointFaultInjectionChild/testChildWritesCheckpointAndIsKilled"]
        var environment = ProcessInfo.processInfo.environment
        environment["LORS_CHECKPOINT_CHILD_WORK_DIR"] = work
        environment[FaultInjection.environmentVariable] = "checkpoint-write:rank=0:after=3"
        child.environment = environment
        let output = Pipe()
        child.standardOutput = output
        child.standardError = output
        try child.run()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        child.waitUntilExit()
        XCTAssertEqual(child.terminationReason, .uncaughtSignal, text)
        XCTAssertEqual(child.terminationStatus, SIGKILL, text)
        XCTAssertTrue(text.contains("killing this process during checkpoint-write after 3 dataset(s)"), text)

        XCTAssertTrue(FileManager.default.fileExists(atPath: directory.path(of: "step_00000002.h5.tmp")), "the partial file exists")
        XCTAssertFalse(FileManager.default.fileExists(atPath: directory.path(of: "step_00000002.h5")), "no partial file under the final name")
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: directory.path(of: "latest"))), latestBefore)
        let choice = try XCTUnwrap(try directory.resolve(.auto))
        XCTAssertEqual(choice.step, 1)
        XCTAssertEqual(choice.warnings, [])
        try CheckpointReader(path: choice.path).verify()
        // The next save of step 2 replaces the stale temporary file; rotation removes stale ones.
        try saveCheckpoint(directory, step: 2, model: model, optimizer: optimizer, keepLast: 5)
        XCTAssertFalse(FileManager.default.fileExists(atPath: directory.path(of: "step_00000002.h5.tmp")))
        XCTAssertEqual(directory.latestName(), "step_00000002.h5")
    }

    func testFaultInjectionRuleParsing() {
        XCTAssertEqual(FaultInjection(rule: "checkpoint-write:rank=1:after=3"), FaultInjection(site: "checkpoint-write", rank: 1, afterDatasets: 3))
        XCTAssertEqual(FaultInjection(rule: "checkpoint-write:after=0"), FaultInjection(rank: nil, afterDatasets: 0))
        XCTAssertNil(FaultInjection(rule: "checkpoint-write:rank=x"))
        XCTAssertNil(FaultInjection(rule: "checkpoint-write:when=2"))
    }
}

/// The child half of `testProcessKilledDuringWriteLeavesPreviousCheckpointIntact`; skipped unless the parent set
/// `LORS_CHECKPOINT_CHILD_WORK_DIR`.
final class CheckpointFaultInjectionChild: XCTestCase {
    func testChildWritesCheckpointAndIsKilled() throws {
        guard let work = ProcessInfo.processInfo.environment["LORS_CHECKPOINT_CHILD_WORK_DIR"] else {
            throw XCTSkip("child of CheckpointDirectoryTests.testProcessKilledDuringWriteLeavesPreviousCheckpointIntact")
        }
        let fault = try XCTUnwrap(FaultInjection.fromEnvironment())
        let (model, optimizer) = makeTrainedModel(steps: 1)
        try saveCheckpoint(CheckpointDirectory(workDirectory: work), step: 2, model: model, optimizer: optimizer, faultInjection: fault)
        XCTFail("the fault injection should have killed this process")
    }
}
