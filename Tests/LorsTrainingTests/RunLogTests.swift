import Foundation
import Logging
import XCTest
import LorsConfig
import LorsTraining

/// The run log (`RunLogHandler` through a swift-log `Logger`): levels in the lines of log.txt, the level threshold,
/// and the trainer's info, debug, warning and error records in a real run.
final class RunLogTests: XCTestCase {
    var directory = ""

    override func setUpWithError() throws {
        directory = (NSTemporaryDirectory() as NSString).appendingPathComponent("lors-log-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    override func tearDown() { try? FileManager.default.removeItem(atPath: directory) }

    private func lines(_ path: String) throws -> [String] {
        try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").map(String.init)
    }

    /// `yyyy-MM-dd HH:mm:ss LEVEL message`.
    private func assertLine(_ line: String, level: String, message: String, file: StaticString = #filePath, line number: UInt = #line) {
        let pattern = #"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} "# + level + " " + NSRegularExpression.escapedPattern(for: message) + "$"
        XCTAssertNotNil(line.range(of: pattern, options: .regularExpression), "'\(line)' is not '<time> \(level) \(message)'",
                        file: file, line: number)
    }

    func testWarningAndInfoReachLogFileWithTheirLevels() throws {
        let path = directory + "/log.txt"
        let log = try Logger.run(path: path, console: false)
        log.info("epoch 1/3 iter 1/4 step 1 loss 1.2345")
        log.warning("step 2: the loss is nan; step skipped")
        log.error("non-finite values at step 3")
        log.debug("not at the default level")
        let written = try lines(path)
        XCTAssertEqual(written.count, 3, "\(written)")
        assertLine(written[0], level: "INFO", message: "epoch 1/3 iter 1/4 step 1 loss 1.2345")
        assertLine(written[1], level: "WARNING", message: "step 2: the loss is nan; step skipped")
        assertLine(written[2], level: "ERROR", message: "non-finite values at step 3")

        // A second logger on the same file appends; metadata follows the message.
        var again = try Logger.run(path: path, console: false)
        again[metadataKey: "rank"] = "0"
        again.notice("resumed", metadata: ["step": "4"])
        assertLine(try lines(path)[3], level: "NOTICE", message: "resumed rank=0 step=4")
    }

    func testLevelThreshold() throws {
        let path = directory + "/log.txt"
        var log = try Logger.run(path: path, console: false, level: .warning)
        log.debug("d1")
        log.info("i1")
        log.warning("w1")
        log.error("e1")
        log.logLevel = .debug   // per Logger value; the file is shared
        log.debug("d2")
        log.info("i2")
        log.trace("t2")
        let written = try lines(path)
        XCTAssertEqual(written.map { $0.split(separator: " ").dropFirst(2).joined(separator: " ") },
                       ["WARNING w1", "ERROR e1", "DEBUG d2", "INFO i2"])
        XCTAssertEqual(RunLogHandler.name(of: .warning), "WARNING")
        XCTAssertEqual(Logger.Level.allCases.map { RunLogHandler.name(of: $0) }, ["TRACE", "DEBUG", "INFO", "NOTICE", "WARNING", "ERROR", "CRITICAL"])
    }

    func testRunLogsInfoAndDebugRecordsAtTheConfiguredLevel() throws {
        for level in ["debug", "info"] {
            let config = try ConfigLoader(schema: .lors).load(yaml: EndToEndTests.tinyYAML,
                                                              overrides: ["train.max_steps=2", "train.log_interval=2", "log.level=\(level)"])
            let work = directory + "/" + level
            try TrainingRun(config: config, workDirectory: work, stopOnSignals: false).run()
            let written = try lines(work + "/log.txt")
            XCTAssertTrue(written.allSatisfy { $0.range(of: #"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} [A-Z]+ "#, options: .regularExpression) != nil },
                          "\(written)")
            XCTAssertTrue(written.contains { $0.contains(" INFO epoch 1/3 iter 2/4 step 2 loss ") }, "\(written)")
            XCTAssertTrue(written.contains { $0.contains(" INFO done: 2 steps") }, "\(written)")
            let debug = written.filter { $0.contains(" DEBUG ") }
            if level == "debug" {
                XCTAssertEqual(debug.count, 2, "one debug record per step: \(written)")
                XCTAssertTrue(debug[0].contains(" DEBUG step 1 loss "), debug[0])
            } else {
                XCTAssertEqual(debug, [])
            }
        }
    }

    func testRunLogsSkippedStepsAsWarningsAndTheEndingErrorAsError() throws {
        let config = try ConfigLoader(schema: .lors).load(yaml: EndToEndTests.tinyYAML,
                                                          overrides: ["train.max_steps=4", "train.max_nonfinite_steps=2"])
        let run = try TrainingRun(config: config, workDirectory: directory + "/nan", stopOnSignals: false)
        let weight = try XCTUnwrap(run.trainer.model.namedParameters().first { $0.0 == "blocks.0.mlp.fc1.weight" }?.1)
        weight.withMutableHostBuffer { $0[0] = .nan }  // every step is non-finite: step 1 is skipped with a warning, step 2 ends the run
        XCTAssertThrowsError(try run.run())
        let written = try lines(directory + "/nan/log.txt")
        let warnings = written.filter { $0.contains(" WARNING ") }
        XCTAssertEqual(warnings.count, 1, "\(written)")
        XCTAssertTrue(warnings[0].contains(" WARNING step 1: the loss is nan; step skipped without an update"), warnings[0])
        XCTAssertFalse(written.contains { $0.lowercased().contains("warning:") }, "no hand-typed level text: \(written)")
        let last = try XCTUnwrap(written.last)
        XCTAssertTrue(last.contains(" ERROR non-finite values at step 2"), last)
    }
}
