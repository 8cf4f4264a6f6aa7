import Foundation
import XCTest
import LorsTestSupport

/// `lors eval-coco` as a user runs it (the `lors` executable built next to the test bundle): the summary lines and
/// `--json` for both maxDets modes, and bad input as one `lors: error: ...` line with exit status 1.
final class COCOEvalCommandTests: XCTestCase {
    func lors(_ arguments: [String]) throws -> LorsRun { try runLors(arguments) }

    var directory: URL!

    override func setUpWithError() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("lors-eval-coco-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: directory)
    }

    func write(_ name: String, _ text: String) throws -> String {
        let url = directory.appendingPathComponent(name)
        try Data(text.utf8).write(to: url)
        return url.path
    }

    func testSummaryAndJSONEqualPycocotoolsInBothModes() throws {
        let fixtures = try COCOEvalReferenceTests.fixtures
        for expected in try COCOEvalReferenceTests.expectedCases() {
            let gt = fixtures.appendingPathComponent(expected.gt).path, dt = fixtures.appendingPathComponent(expected.dt).path
            for mode in expected.modes {
                let maxDets = mode.maxDets.map(String.init).joined(separator: ",")
                let text = try lors(["eval-coco", "--gt", gt, "--dt", dt, "--max-dets", maxDets])
                XCTAssertEqual(text.status, 0, text.stderr)
                XCTAssertEqual(text.stdout, mode.lines.joined(separator: "\n") + "\n", "\(expected.name) \(maxDets)")
                let json = try lors(["eval-coco", "--gt", gt, "--dt", dt, "--max-dets", maxDets, "--json"])
                XCTAssertEqual(json.status, 0, json.stderr)
                XCTAssertEqual(json.stdout.filter { $0 == "\n" }.count, 1, "one line")
                let object = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
                XCTAssertEqual(Set(object.keys), Set(mode.keys))
                let firstKeys = json.stdout.split(separator: ",").map { $0.split(separator: ":")[0].filter { $0.isLetter || $0.isNumber || $0 == "@" } }
                XCTAssertEqual(firstKeys, mode.keys, "keys in summary order")
                for key in mode.keys {
                    let got = try XCTUnwrap((object[key] as? NSNumber)?.doubleValue, key)
                    XCTAssertEqual(got, try XCTUnwrap(mode.values[key]), accuracy: 1e-6, "\(expected.name) \(maxDets) \(key)")
                }
            }
        }
        // The default is pycocotools' 1, 10, 100.
        let first = try XCTUnwrap(try COCOEvalReferenceTests.expectedCases().first)
        let plain = try lors(["eval-coco", "--gt", fixtures.appendingPathComponent(first.gt).path,
                              "--dt", fixtures.appendingPathComponent(first.dt).path])
        XCTAssertEqual(plain.stdout, first.modes[0].lines.joined(separator: "\n") + "\n")
    }

    static let truth = """
        {"images": [{"id": 1}, {"id": 2}],
         "annotations": [{"id": 10, "image_id": 1, "category_id": 1, "bbox": [0, 0, 20, 20], "area": 400, "iscrowd": 0},
                         {"id": 11, "image_id": 2, "category_id": 1, "bbox": [5, 5, 50, 40], "area": 2000, "iscrowd": 0}],
         "categories": [{"id": 1, "name": "thing"}]}
        """
    static let results = #"[{"image_id": 1, "category_id": 1, "bbox": [0, 0, 20, 20], "score": 0.9}]"#

    func expectError(_ arguments: [String], containing parts: [String], file: StaticString = #filePath, line: UInt = #line) throws {
        let result = try lors(["eval-coco"] + arguments)
        XCTAssertEqual(result.status, 1, result.stderr, file: file, line: line)
        XCTAssertEqual(result.stdout, "", file: file, line: line)
        XCTAssertTrue(result.stderr.hasPrefix("lors: error: "), result.stderr, file: file, line: line)
        XCTAssertEqual(result.stderr.filter { $0 == "\n" }.count, 1, "one line: \(result.stderr)", file: file, line: line)
        for part in parts { XCTAssertTrue(result.stderr.contains(part), "'\(part)' not in: \(result.stderr)", file: file, line: line) }
    }

    func testMalformedJSONNamesFileLineAndColumn() throws {
        let gt = try write("gt.json", Self.truth)
        let dt = try write("broken.json", "[\n  {\"image_id\": 1, \"category_id\": 1, \"bbox\": [0, 0, 20, 20] \"score\": 0.9}\n]")
        try expectError(["--gt", gt, "--dt", dt], containing: ["\(dt):2:60: malformed JSON: unexpected character '\"'"])
        let badTruth = try write("badgt.json", Self.truth.replacingOccurrences(of: #""iscrowd": 0}]"#, with: #""iscrowd": 0},]"#))
        try expectError(["--gt", badTruth, "--dt", try write("dt.json", Self.results)], containing: ["\(badTruth):3:"])
    }

    func testNegativeWidthNamesTheAnnotationId() throws {
        let gt = try write("gt.json", Self.truth.replacingOccurrences(of: "[5, 5, 50, 40]", with: "[5, 5, -50, 40]"))
        try expectError(["--gt", gt, "--dt", try write("dt.json", Self.results)],
                        containing: ["\(gt): annotation id 11 (annotations[1]) has a negative width (-50)"])
    }

    func testUnknownCategoryIsNamed() throws {
        let gt = try write("gt.json", Self.truth)
        let dt = try write("dt.json", Self.results.replacingOccurrences(of: #""category_id": 1"#, with: #""category_id": 4"#))
        try expectError(["--gt", gt, "--dt", dt], containing: ["\(dt): detection 0 (image_id 1) has category_id 4, which is not in the categories of \(gt)"])
        let badTruth = try write("gt2.json", Self.truth.replacingOccurrences(of: #""image_id": 2, "category_id": 1"#, with: #""image_id": 2, "category_id": 3"#))
        try expectError(["--gt", badTruth, "--dt", dt], containing: ["annotation id 11 (annotations[1]) has category_id 3"])
    }

    func testMissingKeyAndMissingFile() throws {
        let gt = try write("gt.json", Self.truth)
        let dt = try write("dt.json", #"[{"image_id": 1, "category_id": 1, "score": 0.9}]"#)
        try expectError(["--gt", gt, "--dt", dt], containing: ["detection 0 has no key 'bbox'"])
        try expectError(["--gt", directory.appendingPathComponent("none.json").path, "--dt", dt], containing: ["none.json: no such file"])
    }

    /// A hand-checkable run: image 1's small object found exactly, image 2's medium one missed. Precision is 1 up to
    /// recall 0.5, so 51 of the 101 recall points read 1 and the rest 0: AP = 51/101 at every IoU; AR = 0.5. Small
    /// range: the one object, found: 1. Medium: its object missed, the (small) detection matched to an ignored
    /// object: 0. Large: no object: -1.
    func testTinyRunThroughTheCommand() throws {
        let result = try lors(["eval-coco", "--gt", try write("gt.json", Self.truth), "--dt", try write("dt.json", Self.results), "--json"])
        XCTAssertEqual(result.status, 0, result.stderr)
        let object = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Double])
        XCTAssertEqual(try XCTUnwrap(object["AP"]), 51.0 / 101, accuracy: 1e-12)
        XCTAssertEqual(try XCTUnwrap(object["AR100"]), 0.5, accuracy: 1e-12)
        XCTAssertEqual(try XCTUnwrap(object["APs"]), 1, accuracy: 1e-12)
        XCTAssertEqual(object["APm"], 0)
        XCTAssertEqual(object["APl"], -1)
    }

    /// No detections: 0 where there is ground truth (small, medium), -1 where there is none (large); one compact line.
    func testEmptyResultsPrintOneCompactJSONLine() throws {
        let result = try lors(["eval-coco", "--gt", try write("gt.json", Self.truth), "--dt", try write("dt.json", "[]"), "--json",
                               "--max-dets", "100,300,1000"])
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertEqual(result.stdout, #"{"AP":0.0,"AP50":0.0,"AP75":0.0,"APs":0.0,"APm":0.0,"APl":-1.0,"AR@100":0.0,"AR@300":0.0,"AR@1000":0.0,"ARs":0.0,"ARm":0.0,"ARl":-1.0}"# + "\n")
    }

    /// A malformed --max-dets is a usage error (swift-argument-parser's exit status 64).
    func testBadMaxDetsIsAUsageError() throws {
        let gt = try write("gt.json", Self.truth), dt = try write("dt.json", Self.results)
        for bad in ["1,10", "1,10,x", "0,10,100", "10,10,100"] {
            let result = try lors(["eval-coco", "--gt", gt, "--dt", dt, "--max-dets", bad])
            XCTAssertEqual(result.status, 64, "\(bad): \(result.stderr)")
            XCTAssertTrue(result.stderr.contains("--max-dets"), result.stderr)
        }
    }
}
