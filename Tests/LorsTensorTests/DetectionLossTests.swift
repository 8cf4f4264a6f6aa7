import Foundation
import XCTest
import LorsTensor
import LorsTestSupport

/// The GIoU loss op and the per-stage detection loss: finite-difference gradient checks (GradientCheck's defaults, as
/// NormLossTests; boxes kept ≥ 0.05 away from every kink of the formula so the central differences see one branch),
/// the PyTorch reference of scripts/make_detection_loss_fixtures.py (float64 results of mmdetection's formulas on the
/// stored float32 inputs, to rtol 1e-5 / atol 1e-6: float32 rounding of O(1) values and O(1e-3) gradients is a few
/// ulps, a wrong term or a wrong normaliser is ≥ 1e-3 relative), and the checking backend against the CPU bitwise.
final class DetectionLossTests: XCTestCase {
    override func tearDown() { Backends.setCurrent(CPUBackend.shared) }

    private func boxes(_ rows: [[Float]], requiresGrad: Bool = true) -> Tensor {
        Tensor(rows.flatMap { $0 }, shape: [rows.count, 4], requiresGrad: requiresGrad)
    }

    // MARK: GIoU op

    func testGIoULossGradients() {
        let predicted = boxes([
            [1, 2, 6, 7],         // overlapping
            [0, 0, 2, 2],         // disjoint
            [1.5, 1, 3, 2.5],     // inside the target
            [0, 0.5, 8, 9],       // contains the target
            [4, 1, 2, 3],         // x2 < x1 (negative area, union stays > eps)
            [7, 0, 1, 5],         // x2 < x1 with union below eps (clamped): only the enclosing box moves the loss
            [7, 1, 7, 4],         // zero width, beside the target
            [6, 7, 2, 3],         // x2 < x1 and y2 < y1 (positive area)
        ])
        let target = boxes([
            [2.5, 3, 8, 9],
            [3, 4, 6, 7.5],
            [0, 0, 5, 4],
            [2, 3, 5, 6],
            [0.5, 0.2, 5, 5.3],
            [0, 0.3, 5, 5.3],
            [0, 0.3, 5, 5],
            [1, 1.5, 5, 5.5],
        ])
        assertGradients([predicted, target], "per box") { Tensor.giouLoss(predicted: $0[0], target: $0[1]) }
        assertGradients([predicted, target], "sum / 3") { Tensor.giouLoss(predicted: $0[0], target: $0[1], reduction: .sumDividedBy(3)) }
        assertGradients([predicted], "mean, predicted only") { Tensor.giouLoss(predicted: $0[0], target: target.detached(), reduction: .mean) }
    }

    func testGIoULossValuesAndReductions() {
        // Identical boxes: GIoU 1; disjoint unit squares 2 apart: IoU 0, enclosing 3 × 1 with union 2, GIoU −1/3.
        let p = boxes([[0, 0, 1, 1], [0, 0, 1, 1]], requiresGrad: false), t = boxes([[0, 0, 1, 1], [2, 0, 3, 1]], requiresGrad: false)
        assertClose(Tensor.giouLoss(predicted: p, target: t).toArray(), [0, 4.0 / 3], "identical, disjoint")
        XCTAssertEqual(Tensor.giouLoss(predicted: p, target: t, reduction: .sum).item(), 4.0 / 3, accuracy: 1e-6)
        XCTAssertEqual(Tensor.giouLoss(predicted: p, target: t, reduction: .mean).item(), 2.0 / 3, accuracy: 1e-6)
        XCTAssertEqual(Tensor.giouLoss(predicted: p, target: t, reduction: .sumDividedBy(4)).item(), 1.0 / 3, accuracy: 1e-6)
        // Points (zero union and zero enclosing area): both clamp to eps, the loss is 1 and everything stays finite.
        let a = boxes([[3, 3, 3, 3], [5, 5, 1, 1]]), b = boxes([[3, 3, 3, 3], [5, 5, 5, 5]])
        let loss = Tensor.giouLoss(predicted: a, target: b)
        loss.sum().backward()
        XCTAssertEqual(loss.toArray()[0], 1)
        XCTAssertTrue((loss.toArray() + a.grad!.toArray() + b.grad!.toArray()).allSatisfy(\.isFinite),
                      "\(loss.toArray()) \(a.grad!.toArray()) \(b.grad!.toArray())")
    }

    func testGIoULossMatchesPyTorch() throws {
        let giou = try XCTUnwrap(try Self.fixture()["giou"] as? [String: Any])
        let n = try Self.floats(giou, "predicted").count / 4
        let p = Tensor(try Self.floats(giou, "predicted"), shape: [n, 4], requiresGrad: true)
        let t = Tensor(try Self.floats(giou, "target"), shape: [n, 4], requiresGrad: true)
        let loss = Tensor.giouLoss(predicted: p, target: t)
        assertClose(loss.toArray(), try Self.floats(giou, "loss"), rtol: 1e-5, atol: 1e-6, "loss")
        loss.mul(Tensor(try Self.floats(giou, "weights"), shape: [n])).sum().backward()
        assertClose(p.grad!.toArray(), try Self.floats(giou, "gradPredicted"), rtol: 1e-5, atol: 1e-6, "gradient w.r.t. predicted")
        assertClose(t.grad!.toArray(), try Self.floats(giou, "gradTarget"), rtol: 1e-5, atol: 1e-6, "gradient w.r.t. target")
    }

    func testGIoULossIndependentOfThreadCount() {
        // 10 000 pairs (more than two chunks of the kernels' grain), random corners so some boxes are inverted.
        let n = 10_000
        let p = Tensor(RandomKey(seed: 3, purpose: "giou.p").uniforms(4 * n, low: 0, high: 50), shape: [n, 4], requiresGrad: true)
        let t = Tensor(RandomKey(seed: 3, purpose: "giou.t").uniforms(4 * n, low: 0, high: 50), shape: [n, 4], requiresGrad: true)
        func run() -> [[UInt32]] {
            p.grad = nil
            t.grad = nil
            let loss = Tensor.giouLoss(predicted: p, target: t)
            loss.mul(Tensor(RandomKey(seed: 4, purpose: "giou.w").uniforms(n, low: -1, high: 1), shape: [n])).sum().backward()
            return [loss, p.grad!, t.grad!].map { $0.toArray().map(\.bitPattern) }
        }
        let saved = Threading.threads
        defer { Threading.setThreads(saved) }
        Threading.setThreads(1)
        let one = run()
        Threading.setThreads(3)
        XCTAssertEqual(run(), one)
        XCTAssertTrue(one.allSatisfy { $0.allSatisfy { Float(bitPattern: $0).isFinite } })
    }

    // MARK: detection loss

    func testDetectionLossMatchesPyTorch() throws {
        let stage = try XCTUnwrap(try Self.fixture()["stage"] as? [String: Any])
        let images = try XCTUnwrap(stage["images"] as? Int), queries = try XCTUnwrap(stage["queries"] as? Int)
        let classes = try XCTUnwrap(stage["classes"] as? Int)
        let logits = Tensor(try Self.floats(stage, "logits"), shape: [images * queries, classes], requiresGrad: true)
        let predicted = Tensor(try Self.floats(stage, "boxes"), shape: [images * queries, 4], requiresGrad: true)
        let matches = try XCTUnwrap(stage["matches"] as? [[[String: Any]]]).map { image in
            try image.map { entry in
                DetectionMatch(query: try XCTUnwrap(entry["query"] as? Int), box: try Self.floats(entry, "box"),
                               label: try XCTUnwrap(entry["label"] as? Int))
            }
        }
        let sizes = try XCTUnwrap(stage["imageSizes"] as? [[Double]]).map { (width: Float($0[0]), height: Float($0[1])) }
        let normaliser = Float(try XCTUnwrap(stage["normaliser"] as? Double))
        let parts = DetectionLoss()(logits: logits, boxes: predicted, matches: matches, imageSizes: sizes, normaliser: normaliser)
        for (name, value) in [("classification", parts.classification), ("l1", parts.l1), ("giou", parts.giou), ("total", parts.total)] {
            XCTAssertEqual(value.shape, [], name)
            assertClose([value.item()], [Float(try XCTUnwrap(stage[name] as? Double))], rtol: 1e-5, atol: 1e-6, name)
        }
        parts.total.backward()
        assertClose(logits.grad!.toArray(), try Self.floats(stage, "gradLogits"), rtol: 1e-5, atol: 1e-6, "gradient w.r.t. logits")
        assertClose(predicted.grad!.toArray(), try Self.floats(stage, "gradBoxes"), rtol: 1e-5, atol: 1e-6, "gradient w.r.t. boxes")
        // Unmatched queries get no box gradient.
        let matched = Set(matches.enumerated().flatMap { b, m in m.map { b * queries + $0.query } })
        let gradBoxes = predicted.grad!.toArray()
        for row in 0..<images * queries where !matched.contains(row) {
            XCTAssertEqual(Array(gradBoxes[4 * row..<4 * row + 4]), [0, 0, 0, 0], "row \(row)")
        }
    }

    /// Two images of 3 queries, 3 classes, small images so the normalised L1 gradients are well above the tolerance;
    /// image 1's query 2 is matched with x2 < x1.
    private func smallCase() -> (logits: Tensor, boxes: Tensor, matches: [[DetectionMatch]], sizes: [(width: Float, height: Float)]) {
        let logits = randomTensor([6, 3], "det.logits", low: -3, high: 3)
        let predicted = boxes([
            [1, 2, 9, 11], [3.2, 0.6, 7.1, 4.4], [10, 8, 18, 15],
            [0.4, 1.1, 6.3, 5.2], [2.2, 7.4, 12.6, 13.9], [9.5, 3.3, 5.7, 8.8],
        ])
        let matches = [
            [DetectionMatch(query: 0, box: [2.1, 1.3, 8.2, 12.4], label: 2), DetectionMatch(query: 2, box: [11.4, 6.6, 17.3, 14.2], label: 0)],
            [DetectionMatch(query: 2, box: [4.6, 2.5, 9.8, 9.7], label: 1), DetectionMatch(query: 1, box: [1.7, 6.1, 13.3, 12.8], label: 1)],
        ]
        return (logits, predicted, matches, [(width: 20, height: 16), (width: 14, height: 18)])
    }

    func testDetectionLossGradients() {
        let c = smallCase()
        let loss = DetectionLoss()
        assertGradients([c.logits, c.boxes], "total") {
            loss(logits: $0[0], boxes: $0[1], matches: c.matches, imageSizes: c.sizes, normaliser: 7).total
        }
        for part in ["classification", "l1", "giou"] {
            assertGradients([c.logits, c.boxes], part) {
                let p = loss(logits: $0[0], boxes: $0[1], matches: c.matches, imageSizes: c.sizes, normaliser: 7)
                return part == "classification" ? p.classification : (part == "l1" ? p.l1 : p.giou)
            }
        }
        // The parts are weighted and sum to the total; the weights scale them.
        let p = loss(logits: c.logits, boxes: c.boxes, matches: c.matches, imageSizes: c.sizes, normaliser: 7)
        XCTAssertEqual(p.total.item(), p.classification.item() + p.l1.item() + p.giou.item(), accuracy: 1e-5)
        let unit = DetectionLoss(classWeight: 1, l1Weight: 1, giouWeight: 1)(logits: c.logits, boxes: c.boxes, matches: c.matches,
                                                                             imageSizes: c.sizes, normaliser: 7)
        XCTAssertEqual(p.classification.item(), 2 * unit.classification.item(), accuracy: 1e-6)
        XCTAssertEqual(p.l1.item(), 5 * unit.l1.item(), accuracy: 1e-6)
        XCTAssertEqual(p.giou.item(), 2 * unit.giou.item(), accuracy: 1e-6)
    }

    func testDetectionLossWithoutMatchesOnThisRank() {
        let c = smallCase()
        let parts = DetectionLoss()(logits: c.logits, boxes: c.boxes, matches: [[], []], imageSizes: c.sizes, normaliser: 5)
        XCTAssertEqual(parts.l1.item(), 0)
        XCTAssertEqual(parts.giou.item(), 0)
        // Every focal target is 0: the classification part is 2 · Σ focal(x, 0) / 5.
        let expected = Tensor.sigmoidFocalLoss(c.logits.detached(), targets: Tensor.zeros([6, 3]), reduction: .sum).item() * 2 / 5
        XCTAssertEqual(parts.classification.item(), expected, accuracy: 1e-5)
        parts.total.backward()
        XCTAssertEqual(c.boxes.grad!.toArray(), [Float](repeating: 0, count: 24))
        XCTAssertNotNil(c.logits.grad)
    }

    // MARK: checking backend

    func testCheckingBackendComputesBitwiseWhatTheCPUComputes() {
        func run() -> [[UInt32]] {
            let c = smallCase()
            let parts = DetectionLoss()(logits: c.logits, boxes: c.boxes, matches: c.matches, imageSizes: c.sizes, normaliser: 7)
            parts.total.backward()
            let p = boxes([[4, 1, 2, 3], [1, 2, 6, 7], [3, 3, 3, 3]]), t = boxes([[0.5, 0.2, 5, 5.3], [2.5, 3, 8, 9], [3, 3, 3, 3]])
            let giou = Tensor.giouLoss(predicted: p, target: t)
            giou.mul(Tensor([0.3, -1.2, 0.7], shape: [3])).sum().backward()
            return [parts.total, parts.classification, parts.l1, parts.giou, c.logits.grad!, c.boxes.grad!, giou, p.grad!, t.grad!]
                .map { $0.toArray().map(\.bitPattern) }
        }
        Backends.setCurrent(CheckingBackend.shared)
        let checking = run()
        Backends.setCurrent(CPUBackend.shared)
        let cpu = run()
        XCTAssertEqual(checking, cpu)
    }

    // MARK: fixture

    private static func fixture() throws -> [String: Any] {
        let dir = try XCTUnwrap(Bundle.module.url(forResource: "Fixtures", withExtension: nil))
        let data = try Data(contentsOf: dir.appendingPathComponent("detection_loss.json"))
        return try XCTUnwrap(try JSONSerialization.jsonObject(with: data) as? [String: Any])
    }

    private static func floats(_ object: [String: Any], _ key: String) throws -> [Float] {
        try XCTUnwrap(object[key] as? [Double], "fixture key \(key)").map { Float($0) }
    }
}
