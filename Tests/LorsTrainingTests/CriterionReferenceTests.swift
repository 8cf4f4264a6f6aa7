import Foundation
import XCTest
import LorsDetection
import LorsModels
import LorsTensor
import LorsTestSupport
import LorsTraining

/// The whole 6-stage `AdaMixerCriterion` against the float64 PyTorch/scipy reference of
/// scripts/make_criterion_fixtures.py (mmdetection's formulas: decode (x, y, z, r), per-stage per-image Hungarian
/// matching with FocalLossCost + BBoxL1Cost + IoUCost(giou) solved by `linear_sum_assignment`, then focal, L1 and GIoU
/// losses divided by a cross-rank normaliser, summed over stages), on 3 images of different valid sizes with 3, 0 and
/// 6 ground-truth boxes (Q = 6: the last image matches every query), 4 classes.
///
/// Tolerances. The loss and its parts (O(1)–O(30), sums of ~450 float32 terms) to rtol 1e-5: float32 accumulation is a
/// few 1e-7 relative. The gradients to rtol 1e-4 / atol 1e-6: each element goes through a short float32 chain (2^x
/// decoding, the GIoU quotient whose derivative subtracts terms of similar size, the focal derivative with its
/// log/sigmoid), so a relative error of some 1e-6 is expected on elements of 1e-3–0.4 (observed: ≤ 6e-6 relative,
/// ≤ 1e-7 absolute; the loss and parts ≤ 3e-8 relative) and atol covers the focal gradients of confident negatives
/// (down to 1e-7). A wrong normaliser (the local 9 instead of 12) is 33% off, a
/// swapped width/height in the L1 divisor or one mismatched query changes gradients by ≥ 1e-2 relative. The fixture's
/// optimal assignments are unique by a margin ≥ 0.1 in cost (checked by the script), far above the float32 rounding of
/// the decoded boxes, so `HungarianMatchingCost.adaMixer.assign` must give scipy's assignment exactly.
final class CriterionReferenceTests: XCTestCase {
    override func tearDown() { Tape.shared.reset() }  // no recorded forward may outlive a test (simulated ranks refuse collectives then)

    private struct Fixture {
        let meta: [String: Any]
        let index: [String: (offset: Int, shape: [Int])]
        let values: [Float]

        init() throws {
            guard let jsonURL = Bundle.module.url(forResource: "criterion_reference", withExtension: "json", subdirectory: "Fixtures"),
                  let binURL = Bundle.module.url(forResource: "criterion_reference", withExtension: "bin", subdirectory: "Fixtures") else {
                throw NSError(domain: "CriterionReferenceTests", code: 1, userInfo: [NSLocalizedDescriptionKey:
                    "Fixtures/criterion_reference.{json,bin} missing from the test bundle: run python3 scripts/make_criterion_fixtures.py"])
            }
            let object = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(contentsOf: jsonURL)) as? [String: Any])
            meta = try XCTUnwrap(object["meta"] as? [String: Any])
            let tensors = try XCTUnwrap(object["tensors"] as? [String: [String: Any]])
            var index: [String: (Int, [Int])] = [:]
            for (key, entry) in tensors {
                index[key] = (try XCTUnwrap(entry["offset"] as? Int), try XCTUnwrap(entry["shape"] as? [Int]))
            }
            self.index = index
            let data = try Data(contentsOf: binURL)
            values = data.withUnsafeBytes { raw in
                (0..<(data.count / 4)).map { Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * $0, as: UInt32.self))) }
            }
        }

        func tensor(_ key: String, requiresGrad: Bool = false) throws -> Tensor {
            let entry = try XCTUnwrap(index[key], "fixture has no tensor '\(key)'")
            let n = entry.shape.reduce(1, *)
            XCTAssertLessThanOrEqual(entry.offset + n, values.count, key)
            return Tensor(Array(values[entry.offset..<(entry.offset + n)]), shape: entry.shape, requiresGrad: requiresGrad)
        }

        func int(_ key: String) throws -> Int { try XCTUnwrap(meta[key] as? Int, key) }
        func double(_ key: String) throws -> Double { try XCTUnwrap(meta[key] as? Double, key) }
    }

    private struct Case {
        let fixture: Fixture
        let logits: [Tensor], boxes: [Tensor]
        let gtBoxes: [[Float]], gtLabels: [[Int32]]
        let valid: [(height: Int, width: Int)]
        let stages: Int, images: Int, queries: Int, classes: Int

        init() throws {
            let f = try Fixture()
            fixture = f
            stages = try f.int("stages")
            images = try f.int("images")
            queries = try f.int("queries")
            classes = try f.int("classes")
            logits = try (0..<stages).map { try f.tensor("stage\($0)/logits", requiresGrad: true) }
            boxes = try (0..<stages).map { try f.tensor("stage\($0)/boxes", requiresGrad: true) }
            gtBoxes = try XCTUnwrap(f.meta["gt_boxes"] as? [[Double]]).map { $0.map(Float.init) }
            gtLabels = try XCTUnwrap(f.meta["gt_labels"] as? [[Int]]).map { $0.map(Int32.init) }
            valid = try XCTUnwrap(f.meta["valid"] as? [[Int]]).map { (height: $0[0], width: $0[1]) }
        }

        /// `matches[s][j][g]`: scipy's query for image j's box g at stage s.
        func matches() throws -> [[[Int]]] { try XCTUnwrap(fixture.meta["matches"] as? [[[Int]]]) }
    }

    func testFixtureCoversTheCases() throws {
        let c = try Case()
        XCTAssertEqual(c.stages, 6)
        XCTAssertEqual(c.logits[0].shape, [c.images, c.queries, c.classes])
        XCTAssertEqual(c.boxes[0].shape, [c.images, c.queries, 4])
        XCTAssertTrue(c.gtLabels.contains { $0.isEmpty }, "an image without ground truth")
        XCTAssertTrue(c.gtLabels.contains { $0.count == c.queries }, "an image matching every query")
        XCTAssertEqual(Set(c.valid.map { "\($0.height)x\($0.width)" }).count, c.images, "different valid sizes")
        let local = c.gtLabels.reduce(0) { $0 + AdaMixerCriterion.matchedQueries(boxes: $1.count, queries: c.queries) }
        XCTAssertNotEqual(Double(local), try c.fixture.double("normaliser"), "the normaliser is not the local matched count")
        // Matching differs between stages, so a criterion that matched once and reused it would fail.
        XCTAssertGreaterThan(Set(try c.matches().map { "\($0)" }).count, 1)
    }

    func testMatchingEqualsScipyPerStageAndImage() throws {
        let c = try Case()
        let expected = try c.matches()
        for s in 0..<c.stages {
            let logits = c.logits[s].toArray()
            let corners = withoutGradients { BoxGeometry.corners(c.boxes[s]) }.toArray()
            for j in 0..<c.images {
                let assignment = try HungarianMatchingCost.adaMixer.assign(
                    logits: Array(logits[(j * c.queries * c.classes)..<((j + 1) * c.queries * c.classes)]),
                    boxes: Array(corners[(j * c.queries * 4)..<((j + 1) * c.queries * 4)]), classes: c.classes,
                    gtBoxes: c.gtBoxes[j], gtLabels: c.gtLabels[j], imageWidth: Double(c.valid[j].width),
                    imageHeight: Double(c.valid[j].height), image: "fixture image \(j), stage \(s)")
                XCTAssertEqual(assignment.rowForColumn.map { $0 ?? -1 }, expected[s][j], "stage \(s) image \(j)")
            }
        }
    }

    func testCriterionMatchesPyTorch() throws {
        let c = try Case()
        let outputs = (0..<c.stages).map { s in
            AdaMixerStageOutput(classLogits: c.logits[s], boxes: c.boxes[s], content: Tensor.zeros([c.images, c.queries, 1]))
        }
        let normaliser = Float(try c.fixture.double("normaliser"))
        let parts = try AdaMixerCriterion()(outputs, boxes: c.gtBoxes, labels: c.gtLabels, validSizes: c.valid,
                                            normaliser: normaliser) { j, s in "fixture image \(j), stage \(s)" }
        for (name, value) in [("total", parts.total), ("classification", parts.classification), ("l1", parts.l1), ("giou", parts.giou)] {
            XCTAssertEqual(value.shape, [], name)
            assertClose([value.item()], [Float(try c.fixture.double(name))], rtol: 1e-5, atol: 0, name)
        }
        parts.total.backward()
        for s in 0..<c.stages {
            let gradLogits = try XCTUnwrap(c.logits[s].grad, "stage \(s) logits have no gradient")
            let gradBoxes = try XCTUnwrap(c.boxes[s].grad, "stage \(s) boxes have no gradient")
            assertClose(gradLogits, try c.fixture.tensor("stage\(s)/grad_logits"), rtol: 1e-4, atol: 1e-6, "stage \(s) d total / d logits")
            assertClose(gradBoxes, try c.fixture.tensor("stage\(s)/grad_boxes"), rtol: 1e-4, atol: 1e-6, "stage \(s) d total / d boxes")
        }
    }
}
