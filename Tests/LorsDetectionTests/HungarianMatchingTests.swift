import Foundation
import XCTest
import LorsDetection

/// AdaMixer's matching cost against mmdetection's three cost classes reimplemented in torch
/// (scripts/make_assignment_fixtures.py), and the assignment against scipy's.
final class HungarianMatchingTests: XCTestCase {
    struct Case {
        let name: String
        let queries: Int, classes: Int
        let width: Double, height: Double
        let logits: [Float], boxes: [Float], gtBoxes: [Float]
        let gtLabels: [Int32]
        let cost: [Double], costFloat32: [Double]
        let total: Double
        let rowForColumn: [Int?]
    }

    static func cases() throws -> [Case] {
        let url = try LinearAssignmentTests.fixtures.appendingPathComponent("assignment_cost.json")
        let root = try XCTUnwrap(try JSONSerialization.jsonObject(with: try Data(contentsOf: url)) as? [String: Any])
        func doubles(_ entry: [String: Any], _ key: String) throws -> [Double] {
            try XCTUnwrap(entry[key] as? [Any], key).map { try XCTUnwrap(($0 as? NSNumber)?.doubleValue, key) }
        }
        return try XCTUnwrap(root["cases"] as? [[String: Any]]).map { entry in
            Case(name: try XCTUnwrap(entry["name"] as? String),
                 queries: try XCTUnwrap(entry["queries"] as? Int), classes: try XCTUnwrap(entry["classes"] as? Int),
                 width: try XCTUnwrap((entry["width"] as? NSNumber)?.doubleValue),
                 height: try XCTUnwrap((entry["height"] as? NSNumber)?.doubleValue),
                 logits: try doubles(entry, "logits").map { Float($0) }, boxes: try doubles(entry, "boxes").map { Float($0) },
                 gtBoxes: try doubles(entry, "gt_boxes").map { Float($0) },
                 gtLabels: try XCTUnwrap(entry["gt_labels"] as? [Int]).map { Int32($0) },
                 cost: try doubles(entry, "cost"), costFloat32: try doubles(entry, "cost_float32"),
                 total: try XCTUnwrap((entry["total"] as? NSNumber)?.doubleValue),
                 rowForColumn: try XCTUnwrap(entry["row_for_column"] as? [Any]).map { $0 as? Int })
        }
    }

    func testCostMatrixEqualsTheTorchReference() throws {
        let cases = try Self.cases()
        XCTAssertEqual(cases.count, 5)
        var comparedFloat32 = 0, saturated = 0
        for c in cases {
            let costs = try HungarianMatchingCost.adaMixer.costs(
                logits: c.logits, boxes: c.boxes, classes: c.classes, gtBoxes: c.gtBoxes, gtLabels: c.gtLabels,
                imageWidth: c.width, imageHeight: c.height, image: c.name)
            let count = c.gtLabels.count
            XCTAssertEqual(costs.count, c.queries * count, c.name)
            for q in 0..<c.queries {
                for g in 0..<count {
                    let i = q * count + g
                    // The same formulas in float64: equal up to the last bits of exp/log/pow.
                    XCTAssertEqual(costs[i], c.cost[i], accuracy: 1e-9 * max(1, abs(c.cost[i])), "\(c.name) query \(q) box \(g)")
                    // mmdetection's float32: within 1e-5 relative while float32 resolves 1 − p (logit ≤ 4).
                    if c.logits[q * c.classes + Int(c.gtLabels[g])] <= 4 {
                        XCTAssertEqual(costs[i], c.costFloat32[i], accuracy: 1e-5 * max(1, abs(c.costFloat32[i])),
                                       "\(c.name) query \(q) box \(g) (float32)")
                        comparedFloat32 += 1
                    } else {
                        saturated += 1
                    }
                }
            }
        }
        XCTAssertGreaterThan(comparedFloat32, 10_000)
        XCTAssertGreaterThan(saturated, 0)
    }

    func testAssignmentEqualsScipy() throws {
        for c in try Self.cases() {
            let result = try HungarianMatchingCost.adaMixer.assign(
                logits: c.logits, boxes: c.boxes, classes: c.classes, gtBoxes: c.gtBoxes, gtLabels: c.gtLabels,
                imageWidth: c.width, imageHeight: c.height, image: c.name)
            XCTAssertEqual(result.rowForColumn, c.rowForColumn, c.name)
            XCTAssertEqual(result.totalCost, c.total, accuracy: 1e-9 * max(1, abs(c.total)), c.name)
        }
    }

    func testNonFiniteCostNamesTheImage() throws {
        let c = try XCTUnwrap(try Self.cases().first { $0.gtLabels.count > 2 })
        var logits = c.logits
        logits[3 * c.classes + Int(c.gtLabels[1])] = .nan
        XCTAssertThrowsError(try HungarianMatchingCost.adaMixer.assign(
            logits: logits, boxes: c.boxes, classes: c.classes, gtBoxes: c.gtBoxes, gtLabels: c.gtLabels,
            imageWidth: c.width, imageHeight: c.height, image: "image 632 (000000000632.jpg)")) { error in
            let text = String(describing: error)
            XCTAssertTrue(text.contains("image 632 (000000000632.jpg)"), text)
            XCTAssertTrue(text.contains("query 3, box 1"), text)
        }
        var boxes = c.boxes
        boxes[5 * 4 + 2] = .infinity
        XCTAssertThrowsError(try HungarianMatchingCost.adaMixer.assign(
            logits: c.logits, boxes: boxes, classes: c.classes, gtBoxes: c.gtBoxes, gtLabels: c.gtLabels,
            imageWidth: c.width, imageHeight: c.height, image: "image 9")) { error in
            XCTAssertTrue(String(describing: error).contains("image 9: the matching cost of query 5"), String(describing: error))
        }
    }

    func testBadInputsNameTheImage() {
        let cost = HungarianMatchingCost.adaMixer
        let logits = [Float](repeating: 0, count: 6), boxes: [Float] = [0, 0, 4, 4, 1, 1, 3, 3]
        func message(_ body: () throws -> Void) -> String {
            do { try body(); return "" } catch { return String(describing: error) }
        }
        XCTAssertTrue(message { _ = try cost.costs(logits: logits, boxes: boxes, classes: 3, gtBoxes: [0, 0, 1, 1], gtLabels: [3],
                                                   imageWidth: 8, imageHeight: 8, image: "image A") }.hasPrefix("image A: ground-truth box 0 has label 3"))
        XCTAssertTrue(message { _ = try cost.costs(logits: logits, boxes: [0, 0, 4, 4], classes: 3, gtBoxes: [], gtLabels: [],
                                                   imageWidth: 8, imageHeight: 8, image: "image B") }.hasPrefix("image B: 2 queries need 8"))
        XCTAssertTrue(message { _ = try cost.costs(logits: logits, boxes: boxes, classes: 3, gtBoxes: [0, 0, 1], gtLabels: [0],
                                                   imageWidth: 8, imageHeight: 8, image: "image C") }.hasPrefix("image C: 1 ground-truth"))
        XCTAssertTrue(message { _ = try cost.costs(logits: logits, boxes: boxes, classes: 3, gtBoxes: [], gtLabels: [],
                                                   imageWidth: 0, imageHeight: 8, image: "image D") }.hasPrefix("image D: the image size"))
        XCTAssertTrue(message { _ = try cost.costs(logits: logits, boxes: boxes, classes: 4, gtBoxes: [], gtLabels: [],
                                                   imageWidth: 8, imageHeight: 8, image: "image E") }.hasPrefix("image E: 6 class logits"))
    }

    func testAnImageWithoutBoxesMatchesNothing() throws {
        let result = try HungarianMatchingCost.adaMixer.assign(
            logits: [Float](repeating: -4.6, count: 300 * 80), boxes: [Float](repeating: 1, count: 300 * 4), classes: 80,
            gtBoxes: [], gtLabels: [], imageWidth: 1333, imageHeight: 800, image: "image 1")
        XCTAssertEqual(result, LinearAssignment(rowForColumn: [], totalCost: 0))
    }

    /// A hand-checked entry: logit 0 (p = 1/2), the prediction equal to the box.
    func testOneEntryByHand() throws {
        let costs = try HungarianMatchingCost.adaMixer.costs(
            logits: [0, 0], boxes: [10, 20, 50, 80], classes: 2, gtBoxes: [10, 20, 50, 80, 30, 20, 70, 80], gtLabels: [1, 0],
            imageWidth: 100, imageHeight: 200, image: "hand")
        let pos = -0.25 * 0.25 * log(0.5 + 1e-12), neg = -0.75 * 0.25 * log(0.5 + 1e-12)
        XCTAssertEqual(costs[0], 2 * (pos - neg) - 2, accuracy: 1e-12)
        // The second box is the prediction shifted 20 px in x: L1 = 2 · 20/100; overlap 20 × 60 = 1200 over the union
        // 2 · 2400 − 1200 = 3600, which is also the enclosing box's area (60 × 60), so GIoU = IoU = 1/3.
        let giou = 1200.0 / 3600.0
        XCTAssertEqual(costs[1], 2 * (pos - neg) + 5 * 0.4 - 2 * giou, accuracy: 1e-12)
    }
}
