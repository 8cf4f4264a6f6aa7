import XCTest
import Foundation
import LorsTensor
import LorsTestSupport

/// Gradient checks and forward checks for the core ops (elementwise, reductions, layout, matmul).
/// Tolerances: GradientCheck's defaults (ε = 1e-2, rtol 2e-2, atol 2e-3) — float32 forward
/// passes with O(1) values give rounding error ≈ 1e-7·|L|/ε ≈ 1e-4 and truncation O(ε²) ≈ 1e-4.
final class CoreOpsTests: XCTestCase {
    func testBroadcastBinaryGradients() {
        let a = randomTensor([3, 4, 5], "a"), b = randomTensor([4, 1], "b")
        assertGradients([a, b], "add") { $0[0] + $0[1] }
        assertGradients([a, b], "sub") { $0[0] - $0[1] }
        assertGradients([a, b], "mul") { $0[0] * $0[1] }
        let d = randomTensor([5], "d", low: 0.5, high: 2)
        assertGradients([a, d], "div") { $0[0] / $0[1] }
        let c = randomTensor([3, 1, 5], "c")
        assertGradients([c, b], "both broadcast") { $0[0] * $0[1] }
    }

    func testBroadcastForward() {
        let a = Tensor([1, 2, 3, 4, 5, 6], shape: [2, 3]), b = Tensor([10, 20, 30], shape: [3]), c = Tensor([100, 200], shape: [2, 1])
        XCTAssertEqual((a + b).toArray(), [11, 22, 33, 14, 25, 36])
        XCTAssertEqual((a * c).toArray(), [100, 200, 300, 800, 1000, 1200])
        XCTAssertEqual((c - b).shape, [2, 3])
        XCTAssertEqual((c - b).toArray(), [90, 80, 70, 190, 180, 170])
    }

    func testScalarAndUnaryGradients() {
        let x = randomTensor([2, 7], "x")
        let pos = randomTensor([2, 7], "pos", low: 0.2, high: 2)
        assertGradients([x], "scalar") { ($0[0] * 3 + 1) - 2 }
        assertGradients([pos], "rdiv") { $0[0].reverseDiv(2) }
        assertGradients([pos], "pow") { $0[0].pow(1.7) }
        assertGradients([pos], "log") { $0[0].log() }
        assertGradients([pos], "sqrt") { $0[0].sqrt() }
        for (name, f) in [("exp", { (t: Tensor) in t.exp() }), ("gelu", { $0.gelu() }), ("sigmoid", { $0.sigmoid() }),
                          ("tanh", { $0.tanh() }), ("square", { $0.square() }), ("neg", { -$0 })] as [(String, (Tensor) -> Tensor)] {
            assertGradients([x], name) { f($0[0]) }
        }
        // relu/abs: keep away from the kink (|x| > ε).
        let away = Tensor(x.toArray().map { $0 >= 0 ? $0 + 0.1 : $0 - 0.1 }, shape: x.shape, requiresGrad: true)
        assertGradients([away], "relu") { $0[0].relu() }
        assertGradients([away], "abs") { $0[0].abs() }
    }

    func testActivationValues() {
        let x = Tensor([-2, -0.5, 0, 0.5, 2], shape: [5])
        // Reference values from PyTorch: torch.nn.functional.gelu (erf), sigmoid, tanh.
        assertClose(x.gelu().toArray(), [-0.04550027, -0.15426877, 0, 0.34573123, 1.9544997], rtol: 1e-5, atol: 1e-6)
        assertClose(x.sigmoid().toArray(), [0.11920292, 0.37754067, 0.5, 0.62245933, 0.8807971], rtol: 1e-6)
        assertClose(x.tanh().toArray(), [-0.9640276, -0.46211716, 0, 0.46211716, 0.9640276], rtol: 1e-6)
    }

    func testReductionGradients() {
        let x = randomTensor([3, 4, 5], "x")
        assertGradients([x], "sum axis 1") { $0[0].sum(axes: [1]) }
        assertGradients([x], "sum axes 0,2 keep") { $0[0].sum(axes: [0, 2], keepDims: true) }
        assertGradients([x], "sum all") { $0[0].sum() }
        assertGradients([x], "mean -1") { $0[0].mean(axes: [-1]) }
        assertGradients([x], "mean all") { $0[0].mean() }
        // max: distinct values at spacing 0.1 ≫ ε, so no perturbation changes the argmax.
        let perm = RandomKey(seed: 1, purpose: "max").permutation(60)
        let spaced = Tensor(perm.map { Float($0) * 0.1 - 3 }, shape: [3, 4, 5], requiresGrad: true)
        assertGradients([spaced], "max axis 1") { $0[0].max(axis: 1) }
        assertGradients([spaced], "max axis -1 keep") { $0[0].max(axis: -1, keepDims: true) }
        XCTAssertEqual(Tensor([1, 5, 3, 2, 8, 0], shape: [2, 3]).max(axis: 1).toArray(), [5, 8])
        XCTAssertEqual(Tensor([1, 5, 3, 2, 8, 0], shape: [2, 3]).sum(axes: [0]).toArray(), [3, 13, 3])
    }

    func testLayoutGradients() {
        let x = randomTensor([2, 3, 4], "x")
        assertGradients([x], "reshape") { $0[0].reshaped([6, 4]) }
        assertGradients([x], "permute") { $0[0].permuted([2, 0, 1]) }
        assertGradients([x], "transpose") { $0[0].transposed(0, 2) }
        assertGradients([x], "slice mid") { $0[0].slice(axis: 1, 1..<3) }
        assertGradients([x], "slice lead") { $0[0].slice(axis: 0, 1..<2) }
        assertGradients([x], "split") { t in let p = t[0].split(axis: 2, sizes: [1, 3]); return p[1] * 2 + p[0].sum(axes: [2], keepDims: true) }
        let y = randomTensor([2, 2, 4], "y")
        assertGradients([x, y], "concat") { Tensor.concat([$0[0], $0[1]], axis: 1) }
        assertGradients([x, y], "stack") { Tensor.stack([$0[0].slice(axis: 1, 0..<2), $0[1]], axis: 0) }
        assertGradients([x], "index select dup") { $0[0].indexSelect(axis: 1, [2, 0, 2, 1]) }
        assertGradients([x], "scatter add dup") { $0[0].scatterAdd(axis: 2, [3, 0, 3, 1], size: 5) }
        assertGradients([x], "broadcast") { $0[0].slice(axis: 1, 0..<1).broadcast(to: [2, 5, 4]) }
    }

    func testLayoutValues() {
        let x = Tensor((0..<24).map(Float.init), shape: [2, 3, 4])
        XCTAssertEqual(x.permuted([2, 0, 1]).toArray().prefix(6), [0, 4, 8, 12, 16, 20])
        XCTAssertEqual(x.slice(axis: 2, 1..<3).toArray(), [1, 2, 5, 6, 9, 10, 13, 14, 17, 18, 21, 22])
        XCTAssertEqual(x.indexSelect(axis: 0, [1]).toArray().first, 12)
        let s = Tensor([1, 2, 3], shape: [3]).scatterAdd(axis: 0, [2, 0, 2], size: 4)
        XCTAssertEqual(s.toArray(), [2, 0, 4, 0])
        XCTAssertEqual(Tensor.concat([Tensor([1, 2], shape: [1, 2]), Tensor([3, 4, 5, 6], shape: [2, 2])], axis: 0).toArray(), [1, 2, 3, 4, 5, 6])
    }

    func testMatmulVariants() {
        // Plain, transposed operands, batched with shared and batched right operands, non-square.
        let a = randomTensor([3, 5], "a"), b = randomTensor([5, 4], "b"), bt = randomTensor([4, 5], "bt"), at = randomTensor([5, 3], "at")
        assertGradients([a, b], "a·b") { $0[0].matmul($0[1]) }
        assertGradients([a, bt], "a·btᵀ") { $0[0].matmul($0[1], transposeOther: true) }
        assertGradients([at, b], "atᵀ·b") { $0[0].matmul($0[1], transposeSelf: true) }
        assertGradients([at, bt], "atᵀ·btᵀ") { $0[0].matmul($0[1], transposeSelf: true, transposeOther: true) }
        let xa = randomTensor([2, 3, 3, 5], "xa"), xb = randomTensor([2, 3, 5, 2], "xb"), xbt = randomTensor([2, 3, 2, 5], "xbt")
        assertGradients([xa, b], "batched·shared") { $0[0].matmul($0[1]) }
        assertGradients([xa, bt], "batched·sharedᵀ") { $0[0].matmul($0[1], transposeOther: true) }
        assertGradients([xa, xb], "batched·batched") { $0[0].matmul($0[1]) }
        assertGradients([xa, xbt], "batched·batchedᵀ") { $0[0].matmul($0[1], transposeOther: true) }
        let xat = randomTensor([2, 3, 5, 3], "xat")
        assertGradients([xat, xb], "batchedᵀ·batched") { $0[0].matmul($0[1], transposeSelf: true) }
        assertGradients([xat, b], "batchedᵀ·shared") { $0[0].matmul($0[1], transposeSelf: true) }
        assertGradients([a, xb.slice(axis: 0, 0..<1).reshaped([3, 5, 2]).detached()], "shared·batched") { $0[0].matmul($0[1]) }
        let m = Tensor([1, 2, 3, 4, 5, 6], shape: [2, 3]).matmul(Tensor([1, 0, 0, 1, 1, 1], shape: [3, 2]))
        XCTAssertEqual(m.toArray(), [4, 5, 10, 11])
    }

    /// The fused MLP equals linear → GELU → linear bit for bit (output and every gradient), with several row blocks
    /// per thread and for 1, 2 and 3 threads; plus a central-difference check on a small case (with and without biases).
    func testFusedMLPEqualsTheUnfusedChainBitwise() {
        let saved = Threading.threads
        defer { Threading.setThreads(saved) }
        let x = randomTensor([2, 650, 32], "mlp.x"), w1 = randomTensor([768, 32], "mlp.w1", low: -0.3, high: 0.3)
        let b1 = randomTensor([768], "mlp.b1"), w2 = randomTensor([24, 768], "mlp.w2", low: -0.1, high: 0.1)
        let b2 = randomTensor([24], "mlp.b2"), seed = randomTensor([2, 650, 24], "mlp.seed", requiresGrad: false)
        func run(_ f: () -> Tensor) -> [[UInt32]] {
            for t in [x, w1, b1, w2, b2] { t.grad = nil }
            let y = f()
            y.backward(seed: seed)
            return ([y] + [x, w1, b1, w2, b2].map { $0.grad! }).map { $0.toArray().map(\.bitPattern) }
        }
        Threading.setThreads(1)
        let unfused = run { x.linear(weight: w1, bias: b1).gelu().linear(weight: w2, bias: b2) }
        for t in [1, 2, 3] {
            Threading.setThreads(t)
            let fused = run { Tensor.mlpGELU(x, weight1: w1, bias1: b1, weight2: w2, bias2: b2) }
            for (k, name) in ["output", "dx", "dw1", "db1", "dw2", "db2"].enumerated() {
                XCTAssertEqual(fused[k], unfused[k], "\(name) with \(t) threads")
            }
        }
        let sx = randomTensor([3, 5], "mlp.sx"), sw1 = randomTensor([7, 5], "mlp.sw1"), sb1 = randomTensor([7], "mlp.sb1")
        let sw2 = randomTensor([4, 7], "mlp.sw2"), sb2 = randomTensor([4], "mlp.sb2")
        assertGradients([sx, sw1, sb1, sw2, sb2], "fused MLP") { Tensor.mlpGELU($0[0], weight1: $0[1], bias1: $0[2], weight2: $0[3], bias2: $0[4]) }
        assertGradients([sx, sw1, sw2], "fused MLP without biases") { Tensor.mlpGELU($0[0], weight1: $0[1], bias1: nil, weight2: $0[2], bias2: nil) }
    }

    func testSoftmaxAndDropout() {
        let x = randomTensor([3, 4, 5], "x", low: -3, high: 3)
        assertGradients([x], "softmax -1") { $0[0].softmax(axis: -1) }
        assertGradients([x], "softmax 1") { $0[0].softmax(axis: 1) }
        assertGradients([x], "log softmax -1") { $0[0].logSoftmax(axis: -1) }
        assertGradients([x], "log softmax 0") { $0[0].logSoftmax(axis: 0) }
        let s = Tensor([1, 2, 3], shape: [1, 3]).softmax()
        assertClose(s.toArray(), [0.09003057, 0.24472847, 0.66524096], rtol: 1e-6)
        let key = RandomKey(seed: 3, purpose: "dropout.test", stream: (5, 0))
        assertGradients([x], "dropout") { $0[0].dropout(0.3, key: key) }
        // Row r of a rank's slice equals row firstRow + r of the full batch.
        let full = Tensor.ones([8, 16]).dropout(0.5, key: key, firstRow: 0).toArray()
        let part = Tensor.ones([4, 16]).dropout(0.5, key: key, firstRow: 4).toArray()
        XCTAssertEqual(Array(full[64...]), part)
        let kept = full.filter { $0 != 0 }.count
        XCTAssertTrue(kept > 40 && kept < 88, "dropout kept \(kept) of 128")
        XCTAssertTrue(full.allSatisfy { $0 == 0 || $0 == 2 })
    }
}

final class FastMathTests: XCTestCase {
    func testFastExpAndErfAccuracy() {
        var worstExp: Float = 0, worstErf: Float = 0
        var x: Float = -87
        while x < 88 {
            let ref = expf(x)
            worstExp = max(worstExp, abs(fastExp(x) - ref) / ref)
            x += 0.0137
        }
        x = -6
        while x < 6 {
            worstErf = max(worstErf, abs(fastErf(x) - erff(x)))
            x += 0.0011
        }
        XCTAssertLessThan(worstExp, 3e-7, "fastExp relative error")
        // A&S 7.1.26 is 1.5e-7 in exact arithmetic; float32 evaluation of the polynomial adds a few ulp.
        XCTAssertLessThan(worstErf, 5e-7, "fastErf absolute error")
        XCTAssertEqual(fastExp(-100), 0)
        XCTAssertEqual(fastExp(-.infinity), 0)
        XCTAssertEqual(fastExp(100), .infinity)
        XCTAssertEqual(fastExp(0), 1)
    }

    /// Vector lanes and the scalar tail compute the same bits, so elementwise results do not depend on where thread
    /// chunks split a loop: exp/erf lane by lane, and GELU forward/backward over a length that is no multiple of the
    /// vector width, bitwise equal for 1, 2 and 3 threads.
    func testVectorAndScalarPathsAgreeBitwise() {
        let values = RandomKey(seed: 3, purpose: "lanes").uniforms(4096, low: -12, high: 12)
        let width = FloatVector.scalarCount
        for start in stride(from: 0, to: values.count, by: width) {
            let v = FloatVector(values[start..<(start + width)])
            let e = fastExp(v), f = fastErf(v)
            for lane in 0..<width {
                XCTAssertEqual(e[lane].bitPattern, fastExp(v[lane]).bitPattern, "exp(\(v[lane]))")
                XCTAssertEqual(f[lane].bitPattern, fastErf(v[lane]).bitPattern, "erf(\(v[lane]))")
            }
        }
        let saved = Threading.threads
        defer { Threading.setThreads(saved) }
        func gelu() -> [[UInt32]] {
            let x = Tensor(RandomKey(seed: 4, purpose: "gelu").uniforms(40_013, low: -6, high: 6), shape: [40_013], requiresGrad: true)
            let seed = randomTensor([40_013], "gelu.seed", requiresGrad: false)
            let y = x.gelu()
            y.backward(seed: seed)
            return [y.toArray().map(\.bitPattern), x.grad!.toArray().map(\.bitPattern)]
        }
        Threading.setThreads(1)
        let one = gelu()
        for t in [2, 3] {
            Threading.setThreads(t)
            XCTAssertEqual(gelu(), one, "GELU with \(t) threads differs from 1 thread")
        }
    }
}

final class LinearOpTests: XCTestCase {
    func testFusedLinearMatchesUnfusedAndGradients() {
        let x = randomTensor([2, 3, 5], "x"), w = randomTensor([4, 5], "w"), b = randomTensor([4], "b")
        let fused = withoutGradients { x.linear(weight: w, bias: b) }
        let plain = withoutGradients { x.matmul(w, transposeOther: true) + b }
        assertClose(fused, plain, rtol: 1e-6, atol: 1e-6)
        assertGradients([x, w, b], "linear with bias") { $0[0].linear(weight: $0[1], bias: $0[2]) }
        assertGradients([x, w], "linear without bias") { $0[0].linear(weight: $0[1], bias: nil) }
    }
}

final class AttentionOpTests: XCTestCase {
    /// The strided (b, h) products equal the permute-based composite and pass a gradient check.
    func testPackedAttentionMatchesComposite() {
        let b = 2, t = 5, heads = 2, hd = 3, d = heads * hd
        let qkv = randomTensor([b, t, 3 * d], "qkv")
        func composite(_ x: Tensor) -> Tensor {
            let p = x.reshaped([b, t, 3, heads, hd]).permuted([2, 0, 3, 1, 4])
            let q = p.slice(axis: 0, 0..<1).reshaped([b, heads, t, hd])
            let k = p.slice(axis: 0, 1..<2).reshaped([b, heads, t, hd])
            let v = p.slice(axis: 0, 2..<3).reshaped([b, heads, t, hd])
            let a = (q.matmul(k, transposeOther: true) * 0.5).softmax(axis: -1)
            return a.matmul(v).permuted([0, 2, 1, 3]).reshaped([b, t, d])
        }
        func packed(_ x: Tensor) -> Tensor {
            let a = Tensor.attentionScores(qkv: x, heads: heads, scale: 0.5).softmax(axis: -1)
            return Tensor.attentionValues(probs: a, qkv: x, heads: heads)
        }
        assertClose(withoutGradients { packed(qkv) }, withoutGradients { composite(qkv) }, rtol: 1e-5, atol: 1e-6)
        assertGradients([qkv], "packed attention") { packed($0[0]) }
        let probs = randomTensor([b, heads, t, t], "probs", low: 0, high: 1)
        assertGradients([probs, qkv], "attention values") { Tensor.attentionValues(probs: $0[0], qkv: $0[1], heads: heads) }
        assertGradients([qkv], "attention scores") { Tensor.attentionScores(qkv: $0[0], heads: heads, scale: 0.7) }
    }

    /// The fused kernel equals the three-op path bit for bit (same sgemm calls and softmax rows, one item at a time),
    /// forward and qkv gradient, on shapes with several chunks per thread and T not a multiple of the SIMD width
    /// (the ViT's 65 tokens); and it passes a central-difference gradient check of its own.
    func testFusedSelfAttentionEqualsTheUnfusedPathBitwise() {
        for (b, t, heads, hd) in [(2, 5, 2, 3), (3, 65, 3, 16), (1, 17, 4, 8)] {
            let d = heads * hd, scale = 1 / Float(hd).squareRoot()
            let qkv = randomTensor([b, t, 3 * d], "fused-qkv-\(t)", low: -2, high: 2)
            let seed = randomTensor([b, t, d], "fused-seed-\(t)", requiresGrad: false)
            func gradient(_ f: (Tensor) -> Tensor) -> (out: [UInt32], grad: [UInt32]) {
                qkv.grad = nil
                let out = f(qkv)
                out.backward(seed: seed)
                return (out.toArray().map(\.bitPattern), qkv.grad!.toArray().map(\.bitPattern))
            }
            let fused = gradient { Tensor.selfAttention(qkv: $0, heads: heads, scale: scale) }
            let unfused = gradient {
                Tensor.attentionValues(probs: Tensor.attentionScores(qkv: $0, heads: heads, scale: scale).softmax(axis: -1),
                                       qkv: $0, heads: heads)
            }
            XCTAssertEqual(fused.out, unfused.out, "forward, T=\(t)")
            XCTAssertEqual(fused.grad, unfused.grad, "qkv gradient, T=\(t)")
        }
        let qkv = randomTensor([2, 5, 18], "fused-check")
        assertGradients([qkv], "fused self-attention") { Tensor.selfAttention(qkv: $0[0], heads: 3, scale: 0.6) }
    }
}
