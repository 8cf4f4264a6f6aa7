import Foundation
import XCTest
import LorsCheckpoint
import LorsConfig
import LorsDistributed
import LorsTraining
@testable import LorsCLI

/// The JSON a run and `lors eval --json` write, read back with Foundation's `JSONSerialization`: every line parses,
/// the keys come in the documented order, integers stay integers.
final class JSONOutputTests: XCTestCase {
    var directory = ""

    override func setUpWithError() throws {
        directory = (NSTemporaryDirectory() as NSString).appendingPathComponent("lors-json-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    override func tearDown() { try? FileManager.default.removeItem(atPath: directory) }

    /// The keys of a one-line JSON object in the order they appear in its text.
    private func keyOrder(_ line: String, _ object: [String: Any]) -> [String] {
        object.keys.sorted { line.range(of: "\"\($0)\":")!.lowerBound < line.range(of: "\"\($1)\":")!.lowerBound }
    }

    func testMetricsLinesAndEvalJSONParseWithKeysInOrder() throws {
        let file = (directory as NSString).appendingPathComponent("tiny.yaml")
        try EndToEndTests.tinyYAML.write(toFile: file, atomically: true, encoding: .utf8)
        let work = directory + "/work"
        var command = try LorsCommand.parseAsRoot(["train", file, "--work-dir", work, "--set", "train.max_steps=2", "--threads", "1"])
        try command.run()

        let text = try String(contentsOfFile: work + "/metrics.jsonl", encoding: .utf8)
        let lines = text.split(separator: "\n").map(String.init)
        XCTAssertEqual(lines.count, 3, text)
        for line in lines {
            let object = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], line)
            if object["type"] as? String == "train" {
                XCTAssertEqual(keyOrder(line, object),
                               ["type", "step", "epoch", "loss", "lr", "grad_norm", "samples_per_second", "rss_mb", "time"])
                XCTAssertTrue(line.hasPrefix(#"{"type":"train","step":"#), "scripts grep this prefix: \(line)")
                XCTAssertTrue(object["step"] is Int && object["epoch"] is Int, line)
            } else {
                XCTAssertEqual(keyOrder(line, object), ["type", "step", "epoch", "top1", "top5", "loss", "images", "time"])
                XCTAssertEqual(object["images"] as? Int, 40)
            }
            XCTAssertNotNil(object["loss"] as? Double, line)
        }

        // lors eval --json: the same evaluation as the run's last one, as one line.
        let config = try ConfigLoader(schema: .lors).load(file: file, overrides: [])
        let checkpoint = CheckpointDirectory(workDirectory: work).path(of: "step_00000002.h5")
        let line = try XCTUnwrap(try EvalCommand.report(config: config, checkpoint: checkpoint, world: LocalCommunicator(), json: true))
        XCTAssertFalse(line.contains("\n"), line)
        let eval = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], line)
        XCTAssertEqual(keyOrder(line, eval), ["type", "checkpoint", "step", "top1", "top5", "loss", "images"])
        XCTAssertEqual(eval["type"] as? String, "eval")
        XCTAssertEqual(eval["checkpoint"] as? String, checkpoint, "paths are written without escaped slashes")
        XCTAssertTrue(line.contains(#""checkpoint":"\#(checkpoint)""#), line)
        XCTAssertEqual(eval["step"] as? Int, 2)
        XCTAssertEqual(eval["images"] as? Int, 40)
        let runEval = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(lines[2].utf8)) as? [String: Any])
        XCTAssertEqual(eval["top1"] as? Double, runEval["top1"] as? Double)
        // Without --json: the summary line, then the same JSON line.
        let both = try XCTUnwrap(try EvalCommand.report(config: config, checkpoint: checkpoint, world: LocalCommunicator(), json: false))
        XCTAssertEqual(both.split(separator: "\n").count, 2)
        XCTAssertEqual(both.split(separator: "\n").last.map(String.init), line)
    }
}
