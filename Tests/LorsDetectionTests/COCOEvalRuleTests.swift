import XCTest
import LorsDetection

/// Tiny hand-made cases whose numbers follow from the COCO rules by hand.
final class COCOEvalRuleTests: XCTestCase {
    func box(_ x: Double, _ y: Double, _ w: Double, _ h: Double) -> COCOBox { COCOBox(x: x, y: y, width: w, height: h) }

    func truth(_ annotations: [COCOAnnotation], images: [Int] = [1], categories: [Int] = [1, 2]) throws -> COCOGroundTruth {
        try COCOGroundTruth(imageIDs: images, categories: categories.map { COCOCategory(id: $0) }, annotations: annotations)
    }

    func summary(_ truth: COCOGroundTruth, _ detections: [COCODetection], maxDets: [Int] = [1, 10, 100]) throws -> COCOSummary {
        try COCOSummary(try COCOEvaluator.evaluate(groundTruth: truth, detections: detections, maxDetections: maxDets))
    }

    /// One 50×50 object (medium) found exactly: precision 1 - ε at every recall, so AP = AP50 = AP75 = APm ≈ 1; every
    /// recall 1; the small and large ranges have no object: -1. Category 2 has no ground truth and does not count.
    func testOnePerfectDetection() throws {
        let gt = try truth([COCOAnnotation(id: 1, imageID: 1, categoryID: 1, box: box(10, 10, 50, 50), area: 2500)])
        let s = try summary(gt, [COCODetection(imageID: 1, categoryID: 1, box: box(10, 10, 50, 50), score: 0.3)])
        for key in ["AP", "AP50", "AP75", "APm", "AR1", "AR10", "AR100", "ARm"] {
            XCTAssertEqual(try XCTUnwrap(s[key]), 1, accuracy: 1e-12, key)
        }
        for key in ["APs", "APl", "ARs", "ARl"] { XCTAssertEqual(s[key], -1, key) }
        XCTAssertEqual(s.text.split(separator: "\n").first,
                       " Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all | maxDets=100 ] = 1.000")
        XCTAssertEqual(s.text.split(separator: "\n")[3],
                       " Average Precision  (AP) @[ IoU=0.50:0.95 | area= small | maxDets=100 ] = -1.000")
    }

    /// IoU 0.62 (a 100×62 box inside a 100×100 one: 6200 / 10000) matches at the thresholds 0.50, 0.55, 0.60 only:
    /// AP = AR = 3/10, AP50 = 1, AP75 = 0.
    func testIoUAgainstTheThresholds() throws {
        let gt = try truth([COCOAnnotation(id: 1, imageID: 1, categoryID: 1, box: box(0, 0, 100, 100), area: 10_000)])
        let s = try summary(gt, [COCODetection(imageID: 1, categoryID: 1, box: box(0, 0, 100, 62), score: 0.5)])
        XCTAssertEqual(try XCTUnwrap(s["AP"]), 0.3, accuracy: 1e-12)
        XCTAssertEqual(try XCTUnwrap(s["AP50"]), 1, accuracy: 1e-12)
        XCTAssertEqual(s["AP75"], 0)
        XCTAssertEqual(try XCTUnwrap(s["AR100"]), 0.3, accuracy: 1e-12)
        XCTAssertEqual(try XCTUnwrap(s["APl"]), 0.3, accuracy: 1e-12)
    }

    /// Two objects; a false positive scored 0.9, then an exact hit scored 0.8. Points (recall, precision): (0, 0),
    /// (0.5, 0.5); the envelope makes both 0.5, so the 51 recall thresholds 0.00 ... 0.50 read 0.5 and the 50 above
    /// read 0: AP = 51 · 0.5 / 101 at every IoU. AR1 = 0 (the top detection is the false one), AR10 = 0.5.
    func testPrecisionEnvelopeAndRecallThresholds() throws {
        let gt = try truth([COCOAnnotation(id: 1, imageID: 1, categoryID: 1, box: box(0, 0, 50, 50), area: 2500),
                            COCOAnnotation(id: 2, imageID: 1, categoryID: 1, box: box(200, 200, 50, 50), area: 2500)])
        let s = try summary(gt, [COCODetection(imageID: 1, categoryID: 1, box: box(400, 400, 50, 50), score: 0.9),
                                 COCODetection(imageID: 1, categoryID: 1, box: box(0, 0, 50, 50), score: 0.8)])
        XCTAssertEqual(try XCTUnwrap(s["AP"]), 51 * 0.5 / 101, accuracy: 1e-12)
        XCTAssertEqual(s["AR1"], 0)
        XCTAssertEqual(s["AR10"], 0.5)
    }

    /// A detection inside a crowd region (IoU against a crowd box: intersection / the detection's own area = 1) is
    /// ignored, not a false positive, even scored highest: AP ≈ 1. With one detection per image only that ignored one
    /// is kept: AR1 = 0.
    func testCrowdRegionIgnoresDetectionsInside() throws {
        let gt = try truth([COCOAnnotation(id: 1, imageID: 1, categoryID: 1, box: box(0, 0, 50, 50), area: 2500),
                            COCOAnnotation(id: 2, imageID: 1, categoryID: 1, box: box(100, 100, 200, 200), area: 40_000, isCrowd: true)])
        let s = try summary(gt, [COCODetection(imageID: 1, categoryID: 1, box: box(120, 120, 40, 40), score: 0.95),
                                 COCODetection(imageID: 1, categoryID: 1, box: box(0, 0, 50, 50), score: 0.5)])
        XCTAssertEqual(try XCTUnwrap(s["AP"]), 1, accuracy: 1e-12)
        XCTAssertEqual(s["AR1"], 0)
        XCTAssertEqual(s["AR10"], 1)
        XCTAssertEqual(s["APl"], -1, "the only large object is a crowd: nothing counts")
    }

    /// The range is decided by the annotation's `area`, not width·height: a 100×100 box with area 500 is small.
    func testAreaRangeUsesTheAnnotationArea() throws {
        let gt = try truth([COCOAnnotation(id: 1, imageID: 1, categoryID: 1, box: box(0, 0, 100, 100), area: 500)])
        let s = try summary(gt, [COCODetection(imageID: 1, categoryID: 1, box: box(0, 0, 100, 100), score: 1)])
        XCTAssertEqual(try XCTUnwrap(s["APs"]), 1, accuracy: 1e-12)
        XCTAssertEqual(s["APl"], -1)
    }

    /// No detections at all: every category with ground truth scores 0, ranges without objects -1.
    func testNoDetections() throws {
        let gt = try truth([COCOAnnotation(id: 1, imageID: 1, categoryID: 1, box: box(0, 0, 10, 10), area: 100)])
        let s = try summary(gt, [])
        XCTAssertEqual(s["AP"], 0)
        XCTAssertEqual(s["AR100"], 0)
        XCTAssertEqual(s["APl"], -1)
        XCTAssertEqual(s.entries.map(\.value), [0, 0, 0, 0, -1, -1, 0, 0, 0, 0, -1, -1])
    }

    /// Scores tied with a false positive: the one listed first ranks first (numpy's stable sort), which decides AR1.
    func testTiedScoresKeepFileOrder() throws {
        let gt = try truth([COCOAnnotation(id: 1, imageID: 1, categoryID: 1, box: box(0, 0, 50, 50), area: 2500)])
        let hit = COCODetection(imageID: 1, categoryID: 1, box: box(0, 0, 50, 50), score: 0.5)
        let miss = COCODetection(imageID: 1, categoryID: 1, box: box(300, 300, 50, 50), score: 0.5)
        XCTAssertEqual(try summary(gt, [hit, miss])["AR1"], 1)
        XCTAssertEqual(try summary(gt, [miss, hit])["AR1"], 0)
    }

    /// mmdetection's limits: the AR keys name them, and the AP lines use the largest.
    func testMMDetectionMaxDetections() throws {
        let gt = try truth([COCOAnnotation(id: 1, imageID: 1, categoryID: 1, box: box(0, 0, 50, 50), area: 2500)])
        let s = try summary(gt, [COCODetection(imageID: 1, categoryID: 1, box: box(0, 0, 50, 50), score: 0.5)], maxDets: [1000, 100, 300])
        XCTAssertEqual(s.entries.map(\.key), ["AP", "AP50", "AP75", "APs", "APm", "APl", "AR@100", "AR@300", "AR@1000", "ARs", "ARm", "ARl"])
        XCTAssertEqual(s.entries[0].line, " Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all | maxDets=1000 ] = 1.000")
        XCTAssertEqual(s.entries[6].line, " Average Recall     (AR) @[ IoU=0.50:0.95 | area=   all | maxDets=100 ] = 1.000")
        XCTAssertThrowsError(try COCOEvaluator.evaluate(groundTruth: gt, detections: [], maxDetections: [10, 10, 100]))
        XCTAssertThrowsError(try COCOEvaluator.evaluate(groundTruth: gt, detections: [], maxDetections: [0, 10, 100]))
    }
}
