import XCTest
import LorsTensor
import LorsTestSupport

final class AutogradTests: XCTestCase {
    func testLeafAccumulatesAcrossBackwardCalls() {
        let w = Tensor([1, 2, 3], shape: [3], requiresGrad: true)
        (w * 2).sum().backward()
        (w * 3).sum().backward()
        XCTAssertEqual(w.grad?.toArray(), [5, 5, 5])
        w.zeroGrad()
        XCTAssertEqual(w.grad?.toArray(), [0, 0, 0])
    }

    func testSharedWeightFinalHookFiresOnceAfterLastUse() {
        // A weight used by 4 "layers": the hook must fire once, with the full sum already accumulated.
        let shared = randomTensor([4, 4], "shared")
        let privates = (0..<4).map { randomTensor([4, 4], "private\($0)") }
        var events: [String] = []
        var gradAtHook: [Float] = []
        shared.gradientFinalHook = { t in events.append("shared"); gradAtHook = t.grad!.toArray() }
        for (i, p) in privates.enumerated() { p.gradientFinalHook = { _ in events.append("p\(i)") } }
        var h = randomTensor([2, 4], "x", requiresGrad: false)
        for p in privates { h = h.matmul(shared + p).tanh() }
        h.sum().backward()
        XCTAssertEqual(events.filter { $0 == "shared" }.count, 1)
        // Reverse order: the last layer's private weight is final first; shared only after layer 0.
        XCTAssertEqual(events, ["p3", "p2", "p1", "shared", "p0"].filter { _ in true }.sorted { a, b in
            events.firstIndex(of: a)! < events.firstIndex(of: b)! })
        XCTAssertLessThan(events.firstIndex(of: "p1")!, events.firstIndex(of: "shared")!)
        XCTAssertEqual(events.last, "p0", "layer 0's private weight and the shared weight are final together")
        assertClose(gradAtHook, shared.grad!.toArray(), rtol: 0, atol: 0, "hook saw the final gradient")

        // The shared gradient equals the sum of per-layer contributions.
        var total = [Float](repeating: 0, count: 16)
        for layer in 0..<4 {
            let copy = Tensor(shared.toArray(), shape: [4, 4], requiresGrad: true)
            var h2 = randomTensor([2, 4], "x", requiresGrad: false)
            for (i, p) in privates.enumerated() { h2 = h2.matmul((i == layer ? copy : shared.detached()) + p.detached()).tanh() }
            h2.sum().backward()
            for k in 0..<16 { total[k] += copy.grad!.toArray()[k] }
        }
        assertClose(shared.grad!.toArray(), total, rtol: 1e-5, atol: 1e-6)
    }

    func testHookFiresForUnusedBranch() {
        // A parameter whose output does not reach the loss still becomes final (with no gradient).
        let w = randomTensor([3], "w"), v = randomTensor([3], "v")
        var fired = 0
        v.gradientFinalHook = { _ in fired += 1 }
        _ = v * 2
        (w * 3).sum().backward()
        XCTAssertEqual(fired, 1)
        XCTAssertNil(v.grad)
    }

    func testNoGradDoesNotRecord() {
        let w = randomTensor([3], "w")
        Tape.shared.reset()
        let y = withoutGradients { w * 2 }
        XCTAssertEqual(Tape.shared.count, 0)
        XCTAssertFalse(y.requiresGrad)
    }

    func testIdentityGradientsDoNotAlias() {
        // a + a routes the same gradient object twice; accumulation must not corrupt it.
        let a = randomTensor([2, 3], "a")
        let b = (a + a) + a
        let c = b.reshaped([3, 2]) + b.reshaped([3, 2])
        c.sum().backward()
        XCTAssertEqual(a.grad!.toArray(), [Float](repeating: 6, count: 6))
    }

    func testCounterBasedRandomness() {
        let key = RandomKey(seed: 42, purpose: "init.w")
        XCTAssertEqual(key.uniforms(10), key.uniforms(10))
        XCTAssertEqual(Array(key.uniforms(10)[4...]), Array(key.uniforms(10)[4...]))
        XCTAssertNotEqual(key.uniforms(8), RandomKey(seed: 43, purpose: "init.w").uniforms(8))
        XCTAssertNotEqual(key.uniforms(8), RandomKey(seed: 42, purpose: "init.v").uniforms(8))
        XCTAssertNotEqual(key.with(1).uniforms(8), key.with(2).uniforms(8))
        let u = key.uniforms(100_000)
        let mean = u.reduce(0, +) / Float(u.count)
        XCTAssertEqual(mean, 0.5, accuracy: 0.01)
        XCTAssertTrue(u.allSatisfy { $0 >= 0 && $0 < 1 })
        let n = key.normals(100_000)
        let m = n.reduce(0, +) / Float(n.count)
        let v = n.map { ($0 - m) * ($0 - m) }.reduce(0, +) / Float(n.count)
        XCTAssertEqual(m, 0, accuracy: 0.02)
        XCTAssertEqual(v, 1, accuracy: 0.02)
        let p = key.permutation(1000)
        XCTAssertEqual(p.sorted(), Array(0..<1000))
        XCTAssertNotEqual(p, Array(0..<1000))
        // Philox4x32-10 known-answer test (Random123 kat_vectors: counter 0, key 0).
        let z = philox4x32(counter: (0, 0, 0, 0), key: (0, 0))
        XCTAssertEqual([z.0, z.1, z.2, z.3], [0x6627_E8D5, 0xE169_C58D, 0xBC57_AC4C, 0x9B00_DBD8])
    }

    func testThreadCountDoesNotChangeResults() {
        let x = randomTensor([257, 129], "x", requiresGrad: false)
        // A bias-gradient-shaped column sum (few rows of output, many columns: split over columns).
        let tall = randomTensor([2, 1000, 300], "tall", requiresGrad: false)
        let saved = Threading.threads
        defer { Threading.setThreads(saved) }
        func results() -> [[Float]] {
            [x.sum(axes: [0]).toArray(), [x.sum().item()], x.softmax().toArray(), tall.sum(axes: [1]).toArray(),
             tall.reshaped([2000, 300]).sum(axes: [0]).toArray()]
        }
        Threading.setThreads(1)
        let one = results()
        for t in [2, 3] {
            Threading.setThreads(t)
            XCTAssertEqual(results(), one, "\(t) threads")
        }
        // And the column sums are right.
        let v = tall.toArray()
        for c in [0, 151, 299] {
            let expected = (0..<1000).reduce(Float(0)) { $0 + v[1000 * 300 + $1 * 300 + c] }
            XCTAssertEqual(one[3][300 + c], expected, accuracy: 1e-3)
        }
    }

    func testSteadyStateReusesBuffers() {
        let w = randomTensor([64, 64], "w")
        func step() { let x = randomTensor([32, 64], "x", requiresGrad: false); x.matmul(w).relu().sum().backward(); w.zeroGrad() }
        step(); step()
        let before = Backends.current.memoryStatistics.freshAllocations
        for _ in 0..<5 { step() }
        XCTAssertEqual(Backends.current.memoryStatistics.freshAllocations, before, "steady-state steps allocated fresh buffers")
    }
}
