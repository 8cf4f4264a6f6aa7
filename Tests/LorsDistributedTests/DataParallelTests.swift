import LorsNN
import LorsOptim
import LorsTensor
import XCTest
@testable import LorsDistributed

/// N simulated ranks = 1 rank: reduced gradients, parameters, norms; reproducibility; ZeRO-1; a
/// deliberately wrong reducer is caught.
final class DataParallelTests: XCTestCase {
    private func simulate(_ size: Int, _ options: RunOptions = RunOptions(), checks: Bool = true) throws -> [RunResult] {
        let world = SimulatedWorld(size: size)
        world.checksInFlightWrites = checks
        return try world.run { try trainRun($0, options) }
    }

    /// Every rank of a world holds the same bits.
    private func assertRanksAgree(_ results: [RunResult], file: StaticString = #filePath, line: UInt = #line) {
        for r in 1..<results.count {
            XCTAssertTrue(bitwiseEqual(results[r].parameters, results[0].parameters), "rank \(r) parameters", file: file, line: line)
            XCTAssertTrue(bitwiseEqual(results[r].firstGradients, results[0].firstGradients), "rank \(r) gradients", file: file, line: line)
            XCTAssertEqual(results[r].norms, results[0].norms, "rank \(r) norms", file: file, line: line)
        }
    }

    func testWorldSizesOneToFourAgreeWithASingleRank() throws {
        var options = RunOptions()
        options.clip = 0.05  // small enough to clip every step
        let reference = try trainRun(LocalCommunicator(), options)
        XCTAssertFalse(reference.firstGradients["shared"]!.allSatisfy { $0 == 0 })
        for size in 1...4 {
            let results = try simulate(size, options)
            assertRanksAgree(results)
            let (g, gName) = worstDifference(reference.firstGradients, results[0].firstGradients)
            XCTAssertLessThanOrEqual(g, 1e-5, "world \(size): reduced gradient '\(gName)' differs by \(g)")
            let (p, pName) = worstDifference(reference.parameters, results[0].parameters)
            XCTAssertLessThanOrEqual(p, 1e-5, "world \(size): parameter '\(pName)' after 5 steps differs by \(p)")
            for (a, b) in zip(reference.norms, results[0].norms) { XCTAssertEqual(a, b, accuracy: 1e-5 * a, "world \(size) norm") }
            for (a, b) in zip(reference.losses, results[0].losses) { XCTAssertEqual(a, b, accuracy: 1e-5 * a, "world \(size) loss") }
        }
        XCTAssertEqual(reference.norms.count, 5)
        XCTAssertTrue(reference.norms.allSatisfy { $0 > 0.05 }, "clipping must be active: \(reference.norms)")
    }

    func testRunsAreBitwiseReproducible() throws {
        for size in [1, 3] {
            let a = try simulate(size), b = try simulate(size)
            XCTAssertTrue(bitwiseEqual(a[0].parameters, b[0].parameters), "world \(size)")
            XCTAssertTrue(bitwiseEqual(a[0].firstGradients, b[0].firstGradients), "world \(size)")
        }
        // A different world size is close but needs not be bitwise equal; the same size always is.
        let one = try trainRun(LocalCommunicator()), again = try trainRun(LocalCommunicator())
        XCTAssertTrue(bitwiseEqual(one.parameters, again.parameters))
    }

    func testZeroOneEqualsUnshardedOptimizer() throws {
        for adamw in [false, true] {
            for size in [2, 3, 4] {
                var options = RunOptions()
                options.adamw = adamw
                options.clip = 1.0
                let plain = try simulate(size, options)
                options.zero = true
                let sharded = try simulate(size, options)
                assertRanksAgree(sharded)
                XCTAssertTrue(bitwiseEqual(plain[0].parameters, sharded[0].parameters), "adamw \(adamw), world \(size)")
                // State is sharded: disjoint per-rank keys whose union is the full state.
                let full = Set(plain[0].optimizerStateKeys)
                var union = Set<String>(), total = 0
                for r in sharded { union.formUnion(r.optimizerStateKeys.filter { $0 != "step" }); total += r.optimizerStateKeys.count - 1 }
                XCTAssertEqual(union, full.subtracting(["step"]), "adamw \(adamw), world \(size)")
                XCTAssertEqual(total, union.count, "a parameter's state lives on exactly one rank")
            }
        }
    }

    func testGradientAccumulationOverMicroBatchesEqualsOneBackward() throws {
        let reference = try simulate(2)
        var options = RunOptions()
        options.microBatches = 3
        let accumulated = try simulate(2, options)
        let (d, name) = worstDifference(reference[0].parameters, accumulated[0].parameters)
        XCTAssertLessThanOrEqual(d, 1e-5, "parameter '\(name)'")
        let (g, gName) = worstDifference(reference[0].firstGradients, accumulated[0].firstGradients)
        XCTAssertLessThanOrEqual(g, 1e-5, "gradient '\(gName)'")
    }

    func testReducingTheSharedWeightBeforeItsLastContributionIsCaught() throws {
        var options = RunOptions()
        options.policy = .prematureShared
        options.steps = 1
        // With the in-flight check the simulation names the write into the launched bucket ...
        XCTAssertThrowsError(try simulate(2, options)) { error in
            guard case DistributedError.bufferModifiedInFlight = error else { return XCTFail("unexpected \(error)") }
        }
        // ... and without it the reduced shared gradient is wrong, which the comparison catches.
        let wrong = try simulate(2, options, checks: false)
        let reference = try trainRun(LocalCommunicator(), RunOptions())
        let d = relativeDifference(reference.firstGradients["shared"]!, wrong[0].firstGradients["shared"]!)
        XCTAssertGreaterThan(d, 1e-2, "the wrong reducer must produce a visibly wrong shared gradient")
        // Private parameters were reduced correctly: the error is the shared weight's.
        XCTAssertLessThanOrEqual(relativeDifference(reference.firstGradients["layers.0.private_a"]!,
                                                    wrong[0].firstGradients["layers.0.private_a"]!), 1e-5)
    }

    func testUnmarkedSharedWeightIsStillCorrect() throws {
        // Marking only improves overlap; the final hook keeps an unmarked shared weight correct.
        var options = RunOptions()
        options.markShared = false
        let reference = try trainRun(LocalCommunicator())
        let results = try simulate(3, options)
        let (d, name) = worstDifference(reference.parameters, results[0].parameters)
        XCTAssertLessThanOrEqual(d, 1e-5, "parameter '\(name)'")
    }

    func testSharedWeightIsReducedDecayedClippedAndCountedOnce() throws {
        let model = SharedStackModel()
        model.initializeParameters(seed: 7)
        let shared = GradientReducer.parametersUsedMoreThanOnce(model.parameters) { _ = model(ToyData.batch([0])) }
        XCTAssertEqual(shared.map(\.name), ["shared"])
        let world = SimulatedWorld(size: 2)
        let checks = try world.run { comm -> (Int, Int, [String], Double, Double, Float) in
            let model = SharedStackModel()
            model.initializeParameters(seed: 7)
            let named = model.namedParameters()
            let reducer = GradientReducer(parameters: named, communicator: comm, bucketCapBytes: 96, sharedParameters: [model.shared])
            // Counted once: the flat buffer holds every unique element once.
            let elements = reducer.elementCount
            reducer.zeroGradients()
            reducer.beginBackward()
            let samples = comm.rank == 0 ? [0, 1] : [2, 3]
            Tensor.crossEntropy(model(ToyData.batch(samples)), targets: ToyData.labels(samples), reduction: .sumDividedBy(4)).backward()
            try reducer.finish()
            let lastBucket = reducer.buckets.last!.parameterIndices.map { reducer.names[$0] }
            // Clipped once: the norm counts the shared gradient once.
            var manual = 0.0
            for p in model.parameters { for v in p.grad!.toArray() { manual += Double(v) * Double(v) } }
            let w0 = model.shared.toArray(), g = model.shared.grad!.toArray()
            let norm = reducer.clipGradientNorm(maxNorm: 1e9)
            // Decayed once: one SGD step with weight decay moves W by lr·(g + wd·W) exactly once.
            let sgd = SGD(parameters: reducer.parameters, learningRate: 0.1, weightDecay: 0.5)
            sgd.step()
            let w1 = model.shared.toArray()
            let expected = zip(w0, g).map { w, gv in w - 0.1 * (gv + 0.5 * w) }
            return (elements, model.parameterCount, lastBucket, norm, manual.squareRoot(), relativeDifference(expected, w1))
        }
        XCTAssertEqual(world.statistics.allReducedElements, checks[0].1, "each gradient element reduced exactly once")
        for c in checks {
            XCTAssertEqual(c.0, c.1)
            XCTAssertEqual(c.2, ["shared"], "the shared weight has its own, last bucket")
            XCTAssertEqual(c.3, c.4, accuracy: 1e-6 * c.4)
            XCTAssertLessThanOrEqual(c.5, 1e-6)
        }
    }

    func testBucketsFollowReverseRegistrationOrderWithinTheCap() throws {
        let model = SharedStackModel()
        let reducer = GradientReducer(parameters: model.namedParameters(), communicator: LocalCommunicator(),
                                      bucketCapBytes: 64, sharedParameters: [model.shared])
        XCTAssertEqual(reducer.names.first, "head.bias")
        XCTAssertEqual(reducer.names.last, "shared")
        for bucket in reducer.buckets where bucket.parameterIndices.count > 1 {
            XCTAssertLessThanOrEqual(bucket.range.count * 4, 64)
        }
        XCTAssertEqual(reducer.buckets.map(\.range.count).reduce(0, +), model.parameterCount)
        for (i, p) in reducer.parameters.enumerated() {
            XCTAssertTrue(p.grad!.storage === reducer.flatGradients.storage, "\(reducer.names[i]) grad is a bucket view")
            XCTAssertEqual(p.grad!.offset, reducer.offsets[i])
        }
        // A dropped gradient is re-attached as a view.
        model.shared.grad = nil
        reducer.zeroGradients()
        XCTAssertTrue(model.shared.grad!.storage === reducer.flatGradients.storage)
    }
}
