import LorsNN
import LorsOptim
import LorsTensor
import XCTest
@testable import LorsDistributed

/// The data-parallel guarantees on real LORS models (a small LORS ViT and the reduced LORS AdaMixer
/// decoder): N simulated ranks (1…4) = one rank for reduced gradients (before the optimizer) and
/// parameters after 5 SGD steps; same world size → same bits; ZeRO-1 = unsharded; a reducer that
/// launches the shared weights' bucket early is caught.
final class ModelDataParallelTests: XCTestCase {
    private func simulate(_ size: Int, _ model: ModelCase, _ options: RunOptions, checks: Bool = true) throws -> [RunResult] {
        let world = SimulatedWorld(size: size)
        world.checksInFlightWrites = checks
        return try world.run { try modelTrainRun($0, model, options) }
    }

    private func options(clip: Double? = nil) -> RunOptions {
        var o = RunOptions()
        o.clip = clip
        o.bucketCapBytes = 4096  // several buckets even for these small models
        return o
    }

    private func checkWorldSizes(_ model: ModelCase, clip: Double) throws {
        let o = options(clip: clip)
        let reference = try modelTrainRun(LocalCommunicator(), model, o)
        XCTAssertFalse(reference.sharedNames.isEmpty, "\(model.name): the dry forward must find shared weights")
        for name in reference.sharedNames {
            XCTAssertFalse(reference.firstGradients[name]!.allSatisfy { $0 == 0 }, "\(model.name): shared '\(name)' has a gradient")
        }
        for size in 1...4 {
            let results = try simulate(size, model, o)
            for r in 1..<results.count {
                XCTAssertTrue(bitwiseEqual(results[r].parameters, results[0].parameters), "\(model.name) world \(size) rank \(r)")
            }
            let (g, gName) = worstDifference(reference.firstGradients, results[0].firstGradients)
            XCTAssertLessThanOrEqual(g, 1e-5, "\(model.name) world \(size): reduced gradient '\(gName)' differs by \(g)")
            let (p, pName) = worstDifference(reference.parameters, results[0].parameters)
            XCTAssertLessThanOrEqual(p, 1e-5, "\(model.name) world \(size): parameter '\(pName)' after 5 SGD steps differs by \(p)")
            for (a, b) in zip(reference.norms, results[0].norms) { XCTAssertEqual(a, b, accuracy: 1e-5 * a) }
        }
    }

    func testLORSViTWorldSizesOneToFourAgreeWithOneRank() throws {
        try checkWorldSizes(.lorsViT, clip: 0.5)
    }

    func testLORSAdaMixerDecoderWorldSizesOneToFourAgreeWithOneRank() throws {
        try checkWorldSizes(.lorsAdaMixer, clip: 0.5)
    }

    func testLORSViTRunsWithTheSameWorldSizeAreBitwiseEqual() throws {
        let o = options(clip: 0.5)
        let a = try simulate(3, .lorsViT, o), b = try simulate(3, .lorsViT, o)
        XCTAssertTrue(bitwiseEqual(a[0].parameters, b[0].parameters))
        XCTAssertTrue(bitwiseEqual(a[0].firstGradients, b[0].firstGradients))
    }

    func testLORSViTZeroOneEqualsUnsharded() throws {
        var o = options(clip: 0.5)
        o.adamw = true
        let plain = try simulate(3, .lorsViT, o)
        o.zero = true
        let sharded = try simulate(3, .lorsViT, o)
        XCTAssertTrue(bitwiseEqual(plain[0].parameters, sharded[0].parameters))
        XCTAssertTrue(bitwiseEqual(sharded[2].parameters, sharded[0].parameters))
    }

    func testPrematureSharedReductionIsCaughtOnTheLORSViT() throws {
        var o = options()
        o.steps = 1
        o.policy = .prematureShared
        XCTAssertThrowsError(try simulate(2, .lorsViT, o)) { error in
            guard case DistributedError.bufferModifiedInFlight = error else { return XCTFail("unexpected \(error)") }
        }
        let wrong = try simulate(2, .lorsViT, o, checks: false)
        var right = options()
        right.steps = 1
        let reference = try modelTrainRun(LocalCommunicator(), .lorsViT, right)
        let worst = reference.sharedNames.map { relativeDifference(reference.firstGradients[$0]!, wrong[0].firstGradients[$0]!) }.max()!
        XCTAssertGreaterThan(worst, 1e-2, "a shared weight reduced before its last layer contributed must be visibly wrong")
    }
}
