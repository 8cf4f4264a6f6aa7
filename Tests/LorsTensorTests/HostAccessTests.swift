import XCTest
@testable import LorsTensor

/// The host calls of `Tensor` (copies, scoped host views, staging, finiteness) on the CPU backend (zero copy) and on
/// `CheckingBackend` (staged through host copies; its device pointers fault when dereferenced), and the checking
/// backend's kernels against the CPU's, bitwise.
final class HostAccessTests: XCTestCase {
    override func tearDown() { Backends.setCurrent(CPUBackend.shared) }

    private func onEachBackend(_ body: (any Backend) throws -> Void) rethrows {
        for backend: any Backend in [CPUBackend.shared, CheckingBackend.shared] {
            Backends.setCurrent(backend)
            defer { Backends.setCurrent(CPUBackend.shared) }
            try body(backend)
        }
    }

    func testCheckingBackendPointersArePoisonedAndCPUPointersAreNot() {
        onEachBackend { backend in
            let t = Tensor([1, 2, 3], shape: [3])
            XCTAssertTrue(t.backend === backend)
            XCTAssertEqual(CheckingBackend.isDevicePointer(UnsafeRawPointer(t.pointer)), backend is CheckingBackend)
            XCTAssertEqual(backend.isHostAddressable, backend is CPUBackend)
        }
    }

    func testCopiesToAndFromHostWholeAndRanges() {
        onEachBackend { backend in
            let storage = Storage(count: 10)
            let base = Tensor(storage: storage, shape: [10])
            base.setValues((0..<10).map(Float.init))
            let view = Tensor(storage: storage, shape: [2, 3], offset: 3)   // elements 3..<9
            XCTAssertEqual(view.toArray(), [3, 4, 5, 6, 7, 8], backend.name)
            XCTAssertEqual(view.toArray(elements: 1..<4), [4, 5, 6], backend.name)
            XCTAssertEqual(view.toArray(elements: 2..<2), [], backend.name)
            var host = [Float](repeating: -1, count: 2)
            host.withUnsafeMutableBufferPointer { view.copyToHost($0, from: 4) }
            XCTAssertEqual(host, [7, 8], backend.name)
            [Float](arrayLiteral: 40, 50).withUnsafeBufferPointer { view.copyFromHost($0, at: 1) }
            view.setValues([90], at: 5)
            XCTAssertEqual(base.toArray(), [0, 1, 2, 3, 40, 50, 6, 7, 90, 9], backend.name)
        }
    }

    func testScopedHostViewsAreTheMemoryOnTheCPUAndStagedCopiesOnTheCheckingBackend() throws {
        try onEachBackend { backend in
            let t = Tensor([1, 2, 3, 4, 5], shape: [5])
            let sum = t.withHostBuffer { buffer -> Float in
                XCTAssertEqual(buffer.baseAddress == UnsafePointer(t.pointer), backend.isHostAddressable, backend.name)
                return buffer.reduce(0, +)
            }
            XCTAssertEqual(sum, 15)
            XCTAssertEqual(t.withHostBuffer(elements: 1..<3) { Array($0) }, [2, 3], backend.name)
            t.withMutableHostBuffer(elements: 3..<5) { buffer in
                XCTAssertEqual(Array(buffer), [4, 5])
                buffer[0] = -4
            }
            t.withMutableHostBuffer { $0[0] *= 10 }
            XCTAssertEqual(t.toArray(), [10, 2, 3, -4, 5], backend.name)
            struct Failure: Error {}
            XCTAssertThrowsError(try t.withMutableHostBuffer { (buffer: UnsafeMutableBufferPointer<Float>) throws in
                buffer[1] = 99
                throw Failure()
            })
            // A throwing body: the CPU view was the memory itself; a staged copy is not uploaded.
            XCTAssertEqual(t.toArray()[1], backend.isHostAddressable ? 99 : 2, backend.name)

            let a = Tensor([1, 2], shape: [2]), b = Tensor([3], shape: [1]), empty = Tensor(uninitialized: [0])
            XCTAssertEqual(Tensor.withHostBuffers([a, b, empty]) { $0.map { Array($0) } }, [[1, 2], [3], []], backend.name)
            Tensor.withMutableHostBuffers([a, b]) { buffers in
                buffers[0][1] = 20
                buffers[1][0] = 30
            }
            XCTAssertEqual(a.toArray() + b.toArray(), [1, 20, 30], backend.name)
        }
    }

    func testHostStagingPullsAndPushesOnlyWhenStaged() {
        onEachBackend { backend in
            let t = Tensor([1, 2, 3, 4], shape: [4])
            let stage = t.hostStaging(elements: 1..<3)
            XCTAssertEqual(stage.isCopy, !backend.isHostAddressable)
            stage.pull()
            XCTAssertEqual(Array(stage.buffer), [2, 3], backend.name)
            stage.buffer[0] = 20
            if stage.isCopy { XCTAssertEqual(t.toArray(), [1, 2, 3, 4], "not uploaded before push") }
            stage.push()
            XCTAssertEqual(t.toArray(), [1, 20, 3, 4], backend.name)
        }
    }

    func testAllFiniteFindsNaNAndInfinityAnywhere() {
        onEachBackend { backend in
            let n = 37   // four 8-wide vectors and a tail of 5
            XCTAssertTrue(Tensor.allFinite([Tensor(repeating: 3e38, shape: [n]), Tensor(uninitialized: [0])]), backend.name)
            XCTAssertTrue(Tensor.allFinite([]))
            for position in [0, 7, 8, 31, 32, 36] {
                for bad in [Float.nan, .infinity, -.infinity] {
                    var values = [Float](repeating: 1, count: n)
                    values[position] = bad
                    XCTAssertFalse(Tensor.allFinite([Tensor(repeating: 0, shape: [3]), Tensor(values, shape: [n])]),
                                   "\(backend.name): \(bad) at \(position)")
                }
            }
            XCTAssertEqual(Tensor([3, 4], shape: [2]).sumOfSquares(), 25, backend.name)
        }
    }

    func testCheckingBackendComputesBitwiseWhatTheCPUComputes() {
        func run() -> [[Float]] {
            let key = RandomKey(seed: 7, purpose: "host-access")
            let x = Tensor(key.uniforms(6 * 8, low: -1, high: 1), shape: [6, 8], requiresGrad: true)
            let w = Tensor(RandomKey(seed: 8, purpose: "w").uniforms(8 * 5, low: -1, high: 1), shape: [8, 5], requiresGrad: true)
            let g = Tensor.ones([5]), b = Tensor.zeros([5])
            let y = x.matmul(w).gelu().layerNorm(weight: g, bias: b).softmax(axis: -1)
            let loss = (y * y).sum()
            loss.backward()
            let grad = x.grad!.clone()
            grad.scaleInPlace(0.5)
            let m = Tensor.zeros([8, 5]), v = Tensor.zeros([8, 5])
            w.adamwStep(gradient: w.grad!, expAvg: m, expAvgSq: v, learningRate: 0.1, beta1: 0.9, beta2: 0.999,
                        epsilon: 1e-8, weightDecay: 0.05, step: 1)
            return [y.toArray(), loss.toArray(), grad.toArray(), w.toArray(), m.toArray(), v.toArray(),
                    [Float(x.grad!.sumOfSquares())]]
        }
        Backends.setCurrent(CheckingBackend.shared)
        let checking = run()
        Backends.setCurrent(CPUBackend.shared)
        let cpu = run()
        XCTAssertEqual(checking.map { $0.map(\.bitPattern) }, cpu.map { $0.map(\.bitPattern) })
    }
}
