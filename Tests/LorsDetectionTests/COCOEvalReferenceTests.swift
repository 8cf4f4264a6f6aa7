import Foundation
import XCTest
import LorsDetection

/// The evaluator against pycocotools on the random fixtures of scripts/make_coco_eval_fixtures.py (crowd boxes, GT
/// area ≠ width·height, > 300 detections of one category in one image, tied scores, images without GT or without
/// detections, a category without GT): the 12 numbers to 1e-6 and the 12 printed lines exactly, with maxDets 1, 10,
/// 100 (COCOeval.summarize) and 100, 300, 1000 (mmdetection's summary).
final class COCOEvalReferenceTests: XCTestCase {
    static var fixtures: URL {
        get throws { try XCTUnwrap(Bundle.module.url(forResource: "Fixtures", withExtension: nil)) }
    }

    struct Expected {
        let name: String, gt: String, dt: String
        let modes: [(maxDets: [Int], keys: [String], values: [String: Double], lines: [String])]
    }

    static func expectedCases() throws -> [Expected] {
        let data = try Data(contentsOf: try fixtures.appendingPathComponent("coco_eval_expected.json"))
        let root = try XCTUnwrap(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        let cases = try XCTUnwrap(root["cases"] as? [[String: Any]])
        return try cases.map { entry in
            let modes = try ["standard", "mmdetection"].map { name -> ([Int], [String], [String: Double], [String]) in
                let mode = try XCTUnwrap(entry[name] as? [String: Any])
                let values = try XCTUnwrap(mode["values"] as? [String: Any])
                let keys = name == "standard" ? ["AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl"]
                                              : ["AP", "AP50", "AP75", "APs", "APm", "APl", "AR@100", "AR@300", "AR@1000", "ARs", "ARm", "ARl"]
                return (try XCTUnwrap(mode["maxDets"] as? [Int]), keys,
                        try values.mapValues { try XCTUnwrap(($0 as? NSNumber)?.doubleValue) },
                        try XCTUnwrap(mode["lines"] as? [String]))
            }
            return Expected(name: try XCTUnwrap(entry["name"] as? String), gt: try XCTUnwrap(entry["gt"] as? String),
                            dt: try XCTUnwrap(entry["dt"] as? String), modes: modes)
        }
    }

    func testTwelveNumbersAndLinesEqualPycocotools() throws {
        let cases = try Self.expectedCases()
        XCTAssertGreaterThanOrEqual(cases.count, 4)
        for expected in cases {
            let truth = try COCOGroundTruth.load(path: try Self.fixtures.appendingPathComponent(expected.gt).path)
            let detections = try COCODetections.load(path: try Self.fixtures.appendingPathComponent(expected.dt).path, groundTruth: truth)
            for mode in expected.modes {
                let evaluation = try COCOEvaluator.evaluate(groundTruth: truth, detections: detections, maxDetections: mode.maxDets)
                let summary = try COCOSummary(evaluation)
                XCTAssertEqual(summary.entries.map(\.key), mode.keys, expected.name)
                XCTAssertEqual(Set(mode.values.keys), Set(mode.keys), expected.name)
                for key in mode.keys {
                    let want = try XCTUnwrap(mode.values[key]), got = try XCTUnwrap(summary[key])
                    XCTAssertEqual(got, want, accuracy: 1e-6, "\(expected.name) \(mode.maxDets) \(key)")
                }
                XCTAssertEqual(summary.text.split(separator: "\n").map(String.init), mode.lines, "\(expected.name) \(mode.maxDets)")
            }
        }
    }

    /// The fixtures hold what they are meant to exercise (so a regenerated set cannot silently lose a case).
    func testFixturesCoverTheRules() throws {
        var crowd = false, areaNotWidthTimesHeight = false, moreThan300InOneImageAndCategory = false, tiedScores = false
        var imageWithoutTruth = false, imageWithoutDetections = false, categoryWithoutTruth = false
        var sizes = Set<String>()
        for expected in try Self.expectedCases() {
            let truth = try COCOGroundTruth.load(path: try Self.fixtures.appendingPathComponent(expected.gt).path)
            let detections = try COCODetections.load(path: try Self.fixtures.appendingPathComponent(expected.dt).path, groundTruth: truth)
            crowd = crowd || truth.annotations.contains { $0.isCrowd }
            areaNotWidthTimesHeight = areaNotWidthTimesHeight || truth.annotations.contains { $0.area != $0.box.width * $0.box.height }
            let perImageAndCategory = Dictionary(grouping: detections) { "\($0.imageID)/\($0.categoryID)" }
            moreThan300InOneImageAndCategory = moreThan300InOneImageAndCategory || perImageAndCategory.values.contains { $0.count > 300 }
            tiedScores = tiedScores || Set(detections.map(\.score)).count < detections.count
            let truthImages = Set(truth.annotations.map(\.imageID)), detectionImages = Set(detections.map(\.imageID))
            imageWithoutTruth = imageWithoutTruth || truth.imageIDs.contains { !truthImages.contains($0) }
            imageWithoutDetections = imageWithoutDetections || truth.imageIDs.contains { !detectionImages.contains($0) }
            let truthCategories = Set(truth.annotations.map(\.categoryID))
            categoryWithoutTruth = categoryWithoutTruth || truth.categories.contains { !truthCategories.contains($0.id) }
            for annotation in truth.annotations {
                sizes.insert(annotation.area < 16 * 16 ? "tiny" : annotation.area <= 32 * 32 ? "small" : annotation.area <= 96 * 96 ? "medium" : "large")
            }
        }
        XCTAssertTrue(crowd)
        XCTAssertTrue(areaNotWidthTimesHeight)
        XCTAssertTrue(moreThan300InOneImageAndCategory)
        XCTAssertTrue(tiedScores)
        XCTAssertTrue(imageWithoutTruth)
        XCTAssertTrue(imageWithoutDetections)
        XCTAssertTrue(categoryWithoutTruth)
        XCTAssertEqual(sizes, ["tiny", "small", "medium", "large"])
    }
}
