import XCTest
import LorsTensor
import LorsOptim
import LorsTestSupport

/// AdamW against `torch.optim.AdamW` (see `Fixtures.referenceScript` for the inputs).
/// Tolerance: float32 updates over 5 steps agree with PyTorch to a few ulps (rtol 1e-5).
final class AdamWTests: XCTestCase {
    // torch: run(lambda p, q: torch.optim.AdamW([p, q], lr=0.01, weight_decay=0.05), lambda lr: [lr], skip_q=(3,))
    static let singleGroupP: [Float] = [0.0031643908, 0.874756098, 0.859343231, 0.13043955, -0.713606715, -1.00036991, -0.299421191]
    static let singleGroupQ: [Float] = [0.529534221, 0.23930949, -0.177909181, -0.522906184, -0.297911674, 0.114417195]
    // torch: run(lambda p, q: torch.optim.AdamW([{'params': [p], 'weight_decay': 0.1}, {'params': [q], 'weight_decay': 0.0}],
    //            lr=0.01, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.05), lambda lr: [lr, 0.5*lr])
    static let twoGroupsP: [Float] = [0.00596224703, 0.86883831, 0.857402563, 0.133422539, -0.714345574, -0.997860968, -0.294937283]
    static let twoGroupsQ: [Float] = [0.520219386, 0.251086384, -0.190312237, -0.511305451, -0.312116176, 0.128888726]

    func testMatchesTorchWithSkippedGradient() {
        // q has no gradient at step 3: its state (and its own step count for bias correction) is untouched.
        let p = Fixtures.p(), q = Fixtures.q()
        let optimizer = AdamW(parameters: [p, q], learningRate: 0.01, weightDecay: 0.05)
        Fixtures.run(optimizer, p: p, q: q, skipQ: [3])
        assertClose(p.toArray(), Self.singleGroupP, rtol: 1e-5, atol: 1e-6, "p")
        assertClose(q.toArray(), Self.singleGroupQ, rtol: 1e-5, atol: 1e-6, "q")
        XCTAssertEqual(optimizer.stepCount, 5)
        let state = optimizer.stateDictionary()
        XCTAssertEqual(state["p/step"]?.item(), 5)
        XCTAssertEqual(state["q/step"]?.item(), 4)
        XCTAssertEqual(state["step"]?.item(), 5)
    }

    func testPerGroupSettingsMatchTorch() {
        let p = Fixtures.p(), q = Fixtures.q()
        let optimizer = AdamW(groups: [ParameterGroup(name: "decay", parameters: [p], weightDecay: 0.1),
                                       ParameterGroup(name: "no_decay", parameters: [q], learningRate: .multiplier(0.5), weightDecay: 0)],
                              learningRate: 0.01, beta1: 0.8, beta2: 0.99, epsilon: 1e-6, weightDecay: 0.05)
        Fixtures.run(optimizer, p: p, q: q)
        assertClose(p.toArray(), Self.twoGroupsP, rtol: 1e-5, atol: 1e-6, "p")
        assertClose(q.toArray(), Self.twoGroupsQ, rtol: 1e-5, atol: 1e-6, "q")
    }

    func testSharedParameterIsUpdatedOnce() {
        // p is listed twice in its group and again in q's group: same result as listing it once.
        let p = Fixtures.p(), q = Fixtures.q()
        let optimizer = AdamW(groups: [ParameterGroup(name: "decay", parameters: [p, p], weightDecay: 0.1),
                                       ParameterGroup(name: "no_decay", parameters: [q, p], learningRate: .multiplier(0.5), weightDecay: 0)],
                              learningRate: 0.01, beta1: 0.8, beta2: 0.99, epsilon: 1e-6, weightDecay: 0.05)
        XCTAssertEqual(optimizer.parameters.map(\.name), ["p", "q"])
        XCTAssertEqual(optimizer.parameterCount, 13)
        XCTAssertEqual(optimizer.groups.map { $0.parameters.count }, [1, 1])
        Fixtures.run(optimizer, p: p, q: q)
        assertClose(p.toArray(), Self.twoGroupsP, rtol: 1e-5, atol: 1e-6, "p")
        assertClose(q.toArray(), Self.twoGroupsQ, rtol: 1e-5, atol: 1e-6, "q")
        XCTAssertEqual(Set(optimizer.stateDictionary().keys),
                       ["step", "p/exp_avg", "p/exp_avg_sq", "p/step", "q/exp_avg", "q/exp_avg_sq", "q/step"])
        XCTAssertEqual(optimizer.stateDictionary()["p/step"]?.item(), 5)
    }

    func testStateRoundTripResumesExactly() throws {
        // Steps 1-2 on one optimizer, export, import into a fresh optimizer over copies, steps 3-5:
        // must land on the uninterrupted torch result (per-parameter step counts restored too).
        let p = Fixtures.p(), q = Fixtures.q()
        let first = AdamW(parameters: [p, q], learningRate: 0.01, weightDecay: 0.05)
        Fixtures.run(first, p: p, q: q, steps: 1...2)
        let saved = first.stateDictionary().mapValues { $0.clone() }
        XCTAssertEqual(saved["p/exp_avg"]?.shape, [7])
        XCTAssertEqual(saved["q/exp_avg_sq"]?.shape, [2, 3])

        let p2 = p.clone(), q2 = q.clone()
        p2.name = "p"; q2.name = "q"
        let second = AdamW(parameters: [p2, q2], learningRate: 0.01, weightDecay: 0.05)
        try second.loadStateDictionary(saved)
        XCTAssertEqual(second.stepCount, 2)
        Fixtures.run(second, p: p2, q: q2, steps: 3...5, skipQ: [3])
        assertClose(p2.toArray(), Self.singleGroupP, rtol: 1e-5, atol: 1e-6, "p resumed")
        assertClose(q2.toArray(), Self.singleGroupQ, rtol: 1e-5, atol: 1e-6, "q resumed")
    }

    func testStateImportErrors() {
        let p = Fixtures.p(), q = Fixtures.q()
        let optimizer = AdamW(parameters: [p, q], learningRate: 0.01)
        Fixtures.run(optimizer, p: p, q: q, steps: 1...1)
        let good = optimizer.stateDictionary().mapValues { $0.clone() }

        var unknown = good; unknown["r/exp_avg"] = Tensor.zeros([7])
        XCTAssertThrowsError(try optimizer.loadStateDictionary(unknown)) {
            XCTAssertEqual($0 as? OptimizerError, .unknownStateKey("r/exp_avg"))
        }
        var badState = good; badState["p/momentum_buffer"] = Tensor.zeros([7])
        XCTAssertThrowsError(try optimizer.loadStateDictionary(badState)) {
            XCTAssertEqual($0 as? OptimizerError, .unknownStateKey("p/momentum_buffer"))
        }
        var wrongShape = good; wrongShape["q/exp_avg"] = Tensor.zeros([6])
        XCTAssertThrowsError(try optimizer.loadStateDictionary(wrongShape)) {
            XCTAssertEqual($0 as? OptimizerError, .shapeMismatch(key: "q/exp_avg", expected: [2, 3], actual: [6]))
        }
        var incomplete = good; incomplete["p/exp_avg_sq"] = nil
        XCTAssertThrowsError(try optimizer.loadStateDictionary(incomplete)) {
            XCTAssertEqual($0 as? OptimizerError, .missingStateKey("p/exp_avg_sq"))
        }
        var noStep = good; noStep["step"] = nil
        XCTAssertThrowsError(try optimizer.loadStateDictionary(noStep)) {
            XCTAssertEqual($0 as? OptimizerError, .missingStateKey("step"))
        }
        var fractional = good; fractional["p/step"] = Tensor(scalar: 1.5); fractional["step"] = Tensor(scalar: 7)
        XCTAssertThrowsError(try optimizer.loadStateDictionary(fractional)) {
            XCTAssertEqual($0 as? OptimizerError, .invalidStep(key: "p/step", value: 1.5))
        }
        // A failed import (here after reading step 7) leaves the state as it was; a good one succeeds.
        XCTAssertEqual(optimizer.stateDictionary()["step"]?.item(), 1)
        XCTAssertNoThrow(try optimizer.loadStateDictionary(good))
    }

    func testLargeTensorUsesAllThreadsAndMatchesSmallKernel() {
        // The kernel splits work with parallelFor above its grain; each element is independent, so a
        // large tensor's elements must equal the same elements updated alone.
        let n = 100_003
        let values = (0..<n).map { Float(sin(Double($0) * 0.37)) }, grads = (0..<n).map { Float(cos(Double($0) * 0.11)) }
        let big = Tensor(values, shape: [n], requiresGrad: true)
        big.name = "big"
        let optimizer = AdamW(parameters: [big], learningRate: 0.01, weightDecay: 0.05)
        for _ in 0..<3 { big.grad = Tensor(grads, shape: [n]); optimizer.step() }
        for index in [0, 1, 50_000, n - 1] {
            let one = Tensor([values[index]], shape: [1], requiresGrad: true)
            let single = AdamW(parameters: [one], learningRate: 0.01, weightDecay: 0.05)
            for _ in 0..<3 { one.grad = Tensor([grads[index]], shape: [1]); single.step() }
            XCTAssertEqual(big.toArray()[index], one.item(), "element \(index)")
        }
    }

    func testZeroGrad() {
        let p = Fixtures.p(), q = Fixtures.q()
        let optimizer = AdamW(parameters: [p, q, p], learningRate: 0.01)
        p.grad = Fixtures.gp(1); q.grad = Fixtures.gq(1)
        optimizer.zeroGrad()
        XCTAssertEqual(p.grad?.toArray(), [Float](repeating: 0, count: 7))
        XCTAssertEqual(q.grad?.toArray(), [Float](repeating: 0, count: 6))
        optimizer.zeroGrad(setToNone: true)
        XCTAssertNil(p.grad)
        XCTAssertNil(q.grad)
        // No gradients: a step changes nothing and creates no state.
        let before = p.toArray()
        optimizer.step()
        XCTAssertEqual(p.toArray(), before)
        XCTAssertEqual(Array(optimizer.stateDictionary().keys), ["step"])
    }
}
