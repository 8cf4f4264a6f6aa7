import XCTest
import LorsTensor
import LorsOptim
import LorsTestSupport

/// `clipGradientNorm` against `torch.nn.utils.clip_grad_norm_` with p.grad = gp(1), q.grad = gq(1)
/// (`Fixtures.referenceScript`):
///     p, q = P(), Q(); p.grad = gp(1); q.grad = gq(1)
///     n = torch.nn.utils.clip_grad_norm_([p, q], max_norm)      # max_norm 1.0 and 100.0
final class GradientClippingTests: XCTestCase {
    static let norm = 2.99817038
    static let unclippedP: [Float] = [0.540302277, -0.989992499, 0.2836622, 0.753902256, -0.91113025, 0.00442569796, 0.907446802]
    static let unclippedQ: [Float] = [-0.841470957, 0.909297407, -0.958924294, 0.989358246, -0.999990225, 0.990607381]
    static let clippedP: [Float] = [0.18021062, -0.330198795, 0.0946117416, 0.251454026, -0.303895324, 0.00147613254, 0.302666783]
    static let clippedQ: [Float] = [-0.280661404, 0.303284019, -0.319836408, 0.329987228, -0.333533406, 0.330403864]

    private func withGradients() -> (Tensor, Tensor) {
        let p = Fixtures.p(), q = Fixtures.q()
        p.grad = Fixtures.gp(1); q.grad = Fixtures.gq(1)
        return (p, q)
    }

    func testClipsToMaxNorm() {
        let (p, q) = withGradients()
        let norm = clipGradientNorm(parameters: [p, q], maxNorm: 1.0)
        XCTAssertEqual(norm, Self.norm, accuracy: 1e-6)
        assertClose(p.grad!.toArray(), Self.clippedP, rtol: 1e-5, atol: 1e-7, "p")
        assertClose(q.grad!.toArray(), Self.clippedQ, rtol: 1e-5, atol: 1e-7, "q")
    }

    func testLeavesSmallGradientsAlone() {
        let (p, q) = withGradients()
        let norm = clipGradientNorm(parameters: [p, q], maxNorm: 100)
        XCTAssertEqual(norm, Self.norm, accuracy: 1e-6)
        XCTAssertEqual(p.grad!.toArray(), Self.unclippedP.indices.map { Float(cos(Double(2 * $0 + 1))) })
        assertClose(p.grad!.toArray(), Self.unclippedP, rtol: 1e-6, atol: 0, "p")
        assertClose(q.grad!.toArray(), Self.unclippedQ, rtol: 1e-6, atol: 0, "q")
    }

    func testSharedParameterCountsOnceAndNilGradientsAreSkipped() {
        let (p, q) = withGradients()
        let r = Tensor.zeros([3], requiresGrad: true)   // no gradient: ignored
        let norm = clipGradientNorm(parameters: [p, q, r, p, q], maxNorm: 1.0)
        XCTAssertEqual(norm, Self.norm, accuracy: 1e-6)
        assertClose(p.grad!.toArray(), Self.clippedP, rtol: 1e-5, atol: 1e-7, "p scaled once")
        assertClose(q.grad!.toArray(), Self.clippedQ, rtol: 1e-5, atol: 1e-7, "q scaled once")
        XCTAssertNil(r.grad)
    }

    func testNonFiniteNormPropagatesLikeTorch() {
        let (p, q) = withGradients()
        p.grad = Tensor([1, .nan, 2, 0, 0, 0, 0], shape: [7])
        let norm = clipGradientNorm(parameters: [p, q], maxNorm: 1.0)
        XCTAssertTrue(norm.isNaN)
        XCTAssertTrue(q.grad!.toArray().allSatisfy(\.isNaN))
    }
}
