import XCTest
import LorsTensor
import LorsOptim
import LorsTestSupport

/// SGD against `torch.optim.SGD` (inputs: `Fixtures.referenceScript`; scheduled rate 10 × rates[t]).
final class SGDTests: XCTestCase {
    private func check(_ make: (Tensor, Tensor) -> SGD, skipQ: Set<Int> = [], p expectedP: [Float], q expectedQ: [Float],
                       _ message: String, file: StaticString = #filePath, line: UInt = #line) {
        let p = Fixtures.p(), q = Fixtures.q()
        let optimizer = make(p, q)
        Fixtures.run(optimizer, p: p, q: q, rateScale: 10, skipQ: skipQ)
        assertClose(p.toArray(), expectedP, rtol: 1e-5, atol: 1e-6, "\(message) p", file: file, line: line)
        assertClose(q.toArray(), expectedQ, rtol: 1e-5, atol: 1e-6, "\(message) q", file: file, line: line)
    }

    func testPlain() {
        // torch: run(lambda p, q: torch.optim.SGD([p, q], lr=0.1), lambda lr: [10*lr])
        check({ SGD(parameters: [$0, $1], learningRate: 0.1) },
              p: [0.182013974, 0.905250847, 0.67419982, 0.273010343, -0.631476402, -1.19512284, -0.208155096],
              q: [0.653442025, 0.14393048, -0.111600459, -0.559790611, -0.295002908, 0.143624529], "plain")
    }

    func testMomentumWithWeightDecay() {
        // torch: run(lambda p, q: torch.optim.SGD([p, q], lr=0.1, momentum=0.9, weight_decay=0.01), lambda lr: [10*lr])
        check({ SGD(parameters: [$0, $1], learningRate: 0.1, momentum: 0.9, weightDecay: 0.01) },
              p: [0.251091838, 1.32971656, 0.228278235, 0.194219366, -0.123929389, -1.5175674, -0.420481026],
              q: [1.15808988, -0.357119709, 0.36371997, -0.990544975, 0.104741834, -0.202466682], "momentum")
    }

    func testNesterovWithWeightDecay() {
        // torch: run(lambda p, q: torch.optim.SGD([p, q], lr=0.1, momentum=0.9, weight_decay=0.01, nesterov=True), lambda lr: [10*lr])
        check({ SGD(parameters: [$0, $1], learningRate: 0.1, momentum: 0.9, weightDecay: 0.01, nesterov: true) },
              p: [0.407501072, 1.33633304, 0.0591466688, 0.320572972, -0.0611712411, -1.6896646, -0.33178094],
              q: [1.23885489, -0.418434083, 0.400649816, -0.999496758, 0.0923272595, -0.164450422], "nesterov")
    }

    func testGroupsWithAbsoluteRateAndSkippedGradient() {
        // q: absolute rate 0.05 at base 0.1 (so 0.5 × the scheduled rate), no decay, no gradient at step 2.
        // torch: run(lambda p, q: torch.optim.SGD([{'params': [p]}, {'params': [q], 'weight_decay': 0.0}], lr=0.1,
        //            momentum=0.9, weight_decay=0.01), lambda lr: [10*lr, 0.05*(10*lr)/0.1], skip_q=(2,))
        check({ SGD(groups: [ParameterGroup(parameters: [$0]),
                             ParameterGroup(name: "q", parameters: [$1], learningRate: .absolute(0.05), weightDecay: 0)],
                    learningRate: 0.1, momentum: 0.9, weightDecay: 0.01) }, skipQ: [2],
              p: [0.251091838, 1.32971656, 0.228278235, 0.194219366, -0.123929389, -1.5175674, -0.420481026],
              q: [0.565136373, 0.216119364, -0.166227743, -0.523818314, -0.311600268, 0.140514731], "groups")
    }

    func testSharedParameterIsDecayedOnce() {
        // Zero gradient, lr 0.1, wd 0.5: one update gives p − 0.1·0.5·p = 0.95·p; three would give 0.857375·p.
        let p = Fixtures.p()
        let optimizer = SGD(groups: [ParameterGroup(parameters: [p, p]), ParameterGroup(parameters: [p])],
                            learningRate: 0.1, weightDecay: 0.5)
        XCTAssertEqual(optimizer.parameters.count, 1)
        p.grad = Tensor.zeros([7])
        optimizer.step()
        assertClose(p.toArray(), (0..<7).map { 0.95 * Float(sin(Double($0))) }, rtol: 1e-6, atol: 1e-7)
    }

    func testStateRoundTrip() throws {
        let p = Fixtures.p(), q = Fixtures.q()
        let first = SGD(parameters: [p, q], learningRate: 0.1, momentum: 0.9, weightDecay: 0.01)
        Fixtures.run(first, p: p, q: q, steps: 1...3, rateScale: 10)
        let saved = first.stateDictionary().mapValues { $0.clone() }
        XCTAssertEqual(Set(saved.keys), ["step", "p/momentum_buffer", "q/momentum_buffer"])
        let p2 = p.clone(), q2 = q.clone()
        p2.name = "p"; q2.name = "q"
        let second = SGD(parameters: [p2, q2], learningRate: 0.1, momentum: 0.9, weightDecay: 0.01)
        try second.loadStateDictionary(saved)
        Fixtures.run(second, p: p2, q: q2, steps: 4...5, rateScale: 10)
        // Same torch values as testMomentumWithWeightDecay.
        assertClose(p2.toArray(), [0.251091838, 1.32971656, 0.228278235, 0.194219366, -0.123929389, -1.5175674, -0.420481026],
                    rtol: 1e-5, atol: 1e-6)
        assertClose(q2.toArray(), [1.15808988, -0.357119709, 0.36371997, -0.990544975, 0.104741834, -0.202466682],
                    rtol: 1e-5, atol: 1e-6)
        // Plain SGD has no state beyond the step count.
        let plain = SGD(parameters: [p, q], learningRate: 0.1)
        XCTAssertThrowsError(try plain.loadStateDictionary(saved)) {
            XCTAssertEqual($0 as? OptimizerError, .unknownStateKey("p/momentum_buffer"))
        }
    }
}
