import Foundation
import XCTest
import LorsTensor
import LorsTestSupport

/// Gradient checks and PyTorch forward checks for layer/group norm, the losses and embedding.
///
/// Gradient tolerances: GradientCheck's defaults (ε = 1e-2, rtol 2e-2, atol 2e-3), as in CoreOpsTests —
/// float32 forwards with O(1) values give rounding error ≈ 1e-7·|L|/ε ≈ 1e-4 and truncation O(ε²) ≈ 1e-4,
/// while a wrong term in a backward (a dropped mean, a missing weight) is off by O(0.1…1).
///
/// PyTorch references: torch 2.13.0+cpu, float32, inputs built from `sin` formulas that `sinTensor` below
/// reproduces exactly (`s·sin(a·i + b)` evaluated in double, rounded to float). Forward tolerance
/// rtol = atol = 1e-5: both sides are float32 with different summation orders over ≤ 24 elements and
/// libm exp/log, i.e. a few ulps (≲ 1e-6 relative) of O(1) values; a formula error (unbiased variance,
/// smoothing mass, α_t swapped) is ≥ 1e-3.
final class NormLossTests: XCTestCase {
    /// `s · sin(a·i + b)` for flat index i, as the PyTorch snippets build them.
    private func sinTensor(_ shape: [Int], a: Double = 1, b: Double = 0, s: Double = 1, requiresGrad: Bool = false) -> Tensor {
        let n = shape.reduce(1, *)
        return Tensor((0..<n).map { Float(s * Foundation.sin(a * Double($0) + b)) }, shape: shape, requiresGrad: requiresGrad)
    }

    // MARK: layer norm

    func testLayerNormGradients() {
        let x = randomTensor([3, 5], "ln.x", low: -2, high: 2)
        let w = randomTensor([5], "ln.w", low: 0.5, high: 1.5), b = randomTensor([5], "ln.b")
        assertGradients([x, w, b], "affine [3,5]") { $0[0].layerNorm(weight: $0[1], bias: $0[2]) }
        let xb = randomTensor([2, 3, 7], "ln.xb", low: -2, high: 2)
        let w7 = randomTensor([7], "ln.w7", low: 0.5, high: 1.5), b7 = randomTensor([7], "ln.b7")
        assertGradients([xb, w7, b7], "batched [2,3,7]") { $0[0].layerNorm(weight: $0[1], bias: $0[2]) }
        assertGradients([xb, w7], "weight only") { $0[0].layerNorm(weight: $0[1], bias: nil) }
        assertGradients([xb, b7], "bias only") { $0[0].layerNorm(weight: nil, bias: $0[1]) }
        // Joint normalisation over the last two dims (AdaMixer: (P, C) without affine), and with affine [3, 7].
        assertGradients([xb], "last 2 dims, no affine") { $0[0].layerNorm(lastDims: 2, weight: nil, bias: nil) }
        let w37 = randomTensor([3, 7], "ln.w37", low: 0.5, high: 1.5), b37 = randomTensor([3, 7], "ln.b37")
        assertGradients([xb, w37, b37], "last 2 dims, affine") { $0[0].layerNorm(lastDims: 2, weight: $0[1], bias: $0[2]) }
        // Many rows (more than the 64 reduction chunks) so dw/db sum partial rows from several chunks.
        let many = randomTensor([150, 4], "ln.many", low: -2, high: 2)
        let w4 = randomTensor([4], "ln.w4", low: 0.5, high: 1.5), b4 = randomTensor([4], "ln.b4")
        assertGradients([many, w4, b4], "150 rows") { $0[0].layerNorm(weight: $0[1], bias: $0[2]) }
    }

    func testLayerNormMatchesPyTorch() {
        let x = sinTensor([2, 3, 4])
        let w = Tensor((0..<4).map { 0.5 + 0.25 * Float($0) }, shape: [4]), b = Tensor((0..<4).map { 0.1 * Float($0) - 0.2 }, shape: [4])
        // F.layer_norm(x, (4,), w, b, 1e-5), x = sin(i) of shape [2,3,4], w = 0.5+0.25j, b = 0.1j-0.2
        assertClose(x.layerNorm(weight: w, bias: b, eps: 1e-5).toArray(),
                    [-0.78217095, 0.58036572, 1.0741265, -0.92117351, -0.53869367, -0.85122049, 0.088428006, 2.0882332,
                     0.45624143, 0.33000365, -0.65098053, -1.4435503, -1.0087223, -0.048387606, 1.0742217, 0.69300771,
                     0.0034066737, -0.97113812, -0.67154616, 1.8828126, 0.28148121, 0.54228997, -0.32477704, -1.7682155],
                    rtol: 1e-5, atol: 1e-5, "layer norm affine")
        // F.layer_norm(x, (3, 4), None, None, 1e-5)
        assertClose(x.layerNorm(lastDims: 2, weight: nil, bias: nil, eps: 1e-5).toArray(),
                    [-0.048510924, 1.1427561, 1.2387778, 0.15127209, -1.1199131, -1.406056, -0.44407827, 0.88158232,
                     1.3521196, 0.53492355, -0.81867939, -1.464193, -0.84840679, 0.541601, 1.3703703, 0.87593412,
                     -0.48712504, -1.4656167, -1.1599205, 0.14890814, 1.2575382, 1.1467, -0.081701934, -1.2982808],
                    rtol: 1e-5, atol: 1e-5, "layer norm over 2 dims")
    }

    // MARK: group norm

    func testGroupNormGradients() {
        let x = randomTensor([2, 6, 2, 3], "gn.x", low: -2, high: 2)
        let w = randomTensor([6], "gn.w", low: 0.5, high: 1.5), b = randomTensor([6], "gn.b")
        assertGradients([x, w, b], "3 groups, 2-D spatial") { $0[0].groupNorm(groups: 3, weight: $0[1], bias: $0[2]) }
        assertGradients([x, w, b], "1 group") { $0[0].groupNorm(groups: 1, weight: $0[1], bias: $0[2]) }
        assertGradients([x, w], "instance norm (groups = C), weight only") { $0[0].groupNorm(groups: 6, weight: $0[1], bias: nil) }
        let y = randomTensor([3, 4, 5], "gn.y", low: -2, high: 2)
        assertGradients([y], "no affine, 1-D spatial") { $0[0].groupNorm(groups: 2, weight: nil, bias: nil) }
        let z = randomTensor([4, 6], "gn.z", low: -2, high: 2)
        assertGradients([z, w, b], "no spatial dims") { $0[0].groupNorm(groups: 2, weight: $0[1], bias: $0[2]) }
    }

    func testGroupNormMatchesPyTorch() {
        let x = sinTensor([2, 6, 2, 2], a: 0.7)
        let w = Tensor((0..<6).map { 1 + 0.5 * Float($0) }, shape: [6]), b = Tensor((0..<6).map { 0.1 * Float($0) }, shape: [6])
        // F.group_norm(x, 3, w, b, 1e-5), x = sin(0.7 i) of shape [2,6,2,2], w = 1+0.5c, b = 0.1c
        assertClose(x.groupNorm(groups: 3, weight: w, bias: b, eps: 1e-5).toArray(),
                    [-0.10955486, 0.79665571, 1.2766613, 1.1047078, 0.64250129, -0.8044939, -1.9033796, -2.1373324,
                     -2.0931566, -0.11437935, 1.8402529, 2.8514462, 3.1045253, 1.0607281, -1.5558547, -3.5146031,
                     -4.4403329, -2.8327744, 0.06923262, 2.9008293, 5.0853162, 4.3328147, 1.5140421, -2.0452881,
                     -1.2721672, -1.3919588, -0.88754767, 0.0038338848, 1.3944327, 2.0286367, 1.7100872, 0.58860272,
                     -0.77975237, -2.1210837, -2.3275836, -1.3021318, 0.64123225, 2.7536294, 3.7660332, 3.2022946,
                     2.0280087, -0.96988714, -3.1163912, -3.4019687, -1.9410264, 1.4432615, 4.6255503, 6.1091595],
                    rtol: 1e-5, atol: 1e-5, "group norm affine")
        // F.group_norm(sin(0.7 i) of shape [2,4,3], 2, None, None, 1e-5)
        assertClose(sinTensor([2, 4, 3], a: 0.7).groupNorm(groups: 2, weight: nil, bias: nil, eps: 1e-5).toArray(),
                    [-0.87232161, 0.48887298, 1.2098765, 0.9515897, -0.16451107, -1.6135062, -0.97284329, -1.1197284,
                     -0.65449154, 0.20405927, 1.052134, 1.4908701, 1.7155353, 0.90463227, -0.13353062, -0.91068935,
                     -1.0613339, -0.51461375, -0.78646773, 0.54204112, 1.2126968, 0.91007936, -0.22348522, -1.654864],
                    rtol: 1e-5, atol: 1e-5, "group norm without affine")
    }

    /// Weight/bias gradients are reduced in a fixed order: bitwise equal for 1, 2 and 3 threads.
    func testNormGradientsIndependentOfThreadCount() {
        let saved = Threading.threads
        defer { Threading.setThreads(saved) }
        func grads() -> [[Float]] {
            let x = randomTensor([700, 96], "det.x"), w = randomTensor([96], "det.w"), b = randomTensor([96], "det.b")
            let gx = randomTensor([8, 96, 300], "det.gx"), gw = randomTensor([96], "det.gw"), gb = randomTensor([96], "det.gb")
            let seed = randomTensor([700, 96], "det.seed", requiresGrad: false)
            x.layerNorm(weight: w, bias: b).mul(seed).sum().backward()
            let seed2 = randomTensor([8, 96, 300], "det.seed2", requiresGrad: false)
            gx.groupNorm(groups: 8, weight: gw, bias: gb).mul(seed2).sum().backward()
            return [x.grad!, w.grad!, b.grad!, gx.grad!, gw.grad!, gb.grad!].map { $0.toArray() }
        }
        Threading.setThreads(1)
        let one = grads()
        for t in [2, 3] {
            Threading.setThreads(t)
            XCTAssertEqual(grads(), one, "gradients with \(t) threads differ from 1 thread")
        }
    }

    // MARK: cross-entropy

    func testCrossEntropyGradients() {
        let logits = randomTensor([4, 7], "ce.logits", low: -3, high: 3)
        let targets: [Int32] = [3, 0, 6, 3]
        for smoothing: Float in [0, 0.1] {
            for reduction in [LossReduction.none, .sum, .mean, .sumDividedBy(10)] {
                assertGradients([logits], "index targets ε=\(smoothing) \(reduction)") {
                    Tensor.crossEntropy($0[0], targets: targets, labelSmoothing: smoothing, reduction: reduction)
                }
            }
        }
        // Soft targets (rows need not sum to 1 for the gradient check): gradients for logits and targets.
        let soft = randomTensor([4, 7], "ce.soft", low: 0, high: 0.3)
        for smoothing: Float in [0, 0.2] {
            assertGradients([logits, soft], "soft targets ε=\(smoothing)") {
                Tensor.crossEntropy($0[0], softTargets: $0[1], labelSmoothing: smoothing, reduction: .none)
            }
            assertGradients([logits, soft], "soft targets ε=\(smoothing) sumDividedBy") {
                Tensor.crossEntropy($0[0], softTargets: $0[1], labelSmoothing: smoothing, reduction: .sumDividedBy(3))
            }
        }
    }

    func testCrossEntropyMatchesPyTorch() {
        let logits = sinTensor([3, 5], a: 1.3, b: 0.5, s: 2, requiresGrad: true)
        let targets: [Int32] = [1, 4, 0]
        // F.cross_entropy(2 sin(1.3 i + 0.5) of shape [3,5], tensor([1,4,0]), reduction='none')
        assertClose(Tensor.crossEntropy(logits, targets: targets, reduction: .none).toArray(),
                    [0.46727404, 3.1258874, 0.80602521], rtol: 1e-5, atol: 1e-5, "plain")
        // ... label_smoothing=0.1, reduction='none' and the default mean
        let smoothed = Tensor.crossEntropy(logits, targets: targets, labelSmoothing: 0.1, reduction: .none)
        assertClose(smoothed.toArray(), [0.66234088, 3.0529947, 0.96404982], rtol: 1e-5, atol: 1e-5, "ε = 0.1")
        assertClose([Tensor.crossEntropy(logits, targets: targets, labelSmoothing: 0.1).item()], [1.5597951], rtol: 1e-5, atol: 1e-5, "mean")
        // logits.grad after F.cross_entropy(..., label_smoothing=0.1, reduction='none').sum().backward()
        logits.grad = nil
        smoothed.sum().backward()
        assertClose(logits.grad!.toArray(),
                    [0.21313949, -0.29329172, 0.077119999, -0.0066758017, 0.0097079575, 0.3143872, 0.52602786, 0.043413252,
                     -0.007726361, -0.87610197, -0.47337022, 0.41296861, 0.021679865, -0.0077093071, 0.046430942],
                    rtol: 1e-5, atol: 1e-5, "gradient ε = 0.1")
        // Probabilities: torch.softmax(torch.cos(2 sin(0.9 i)) of shape [3,5], dim=1), printed and pasted.
        let soft = Tensor([0.33044598, 0.1220689, 0.084133454, 0.23435639, 0.2289952, 0.11249036, 0.16783962, 0.44460174,
                           0.16096801, 0.1141002, 0.23889622, 0.22288269, 0.08274208, 0.1269412, 0.32853776], shape: [3, 5])
        // F.cross_entropy(logits, soft, reduction='none') and with label_smoothing=0.2
        assertClose(Tensor.crossEntropy(logits, softTargets: soft, reduction: .none).toArray(),
                    [2.5516076, 2.516006, 2.0913255], rtol: 1e-5, atol: 1e-5, "soft")
        assertClose(Tensor.crossEntropy(logits, softTargets: soft, labelSmoothing: 0.2, reduction: .none).toArray(),
                    [2.5248747, 2.492197, 2.1503148], rtol: 1e-5, atol: 1e-5, "soft ε = 0.2")
        Tape.shared.reset()
    }

    func testLossReductions() {
        let logits = randomTensor([5, 4], "red.logits", requiresGrad: false)
        let targets: [Int32] = [0, 1, 2, 3, 1]
        let perSample = Tensor.crossEntropy(logits, targets: targets, reduction: .none)
        XCTAssertEqual(perSample.shape, [5])
        let total = perSample.toArray().reduce(0, +)
        XCTAssertEqual(Tensor.crossEntropy(logits, targets: targets, reduction: .sum).shape, [])
        assertClose([Tensor.crossEntropy(logits, targets: targets, reduction: .sum).item()], [total], rtol: 1e-6)
        assertClose([Tensor.crossEntropy(logits, targets: targets, reduction: .mean).item()], [total / 5], rtol: 1e-6)
        // A rank holding 5 of a global batch of 16 divides its sum by 16.
        assertClose([Tensor.crossEntropy(logits, targets: targets, reduction: .sumDividedBy(16)).item()], [total / 16], rtol: 1e-6)
        // Element losses: .mean divides by the element count.
        let p = randomTensor([2, 3], "red.p", requiresGrad: false), t = randomTensor([2, 3], "red.t", requiresGrad: false)
        let l1 = Tensor.l1Loss(p, t, reduction: .none).toArray()
        assertClose([Tensor.l1Loss(p, t, reduction: .mean).item()], [l1.reduce(0, +) / 6], rtol: 1e-6)
    }

    // MARK: focal loss

    func testSigmoidFocalLossGradients() {
        let logits = randomTensor([3, 7], "fl.logits", low: -3, high: 3)
        let targets = Tensor((0..<21).map { $0 % 4 == 1 ? 1 : 0 }, shape: [3, 7])
        assertGradients([logits], "α 0.25 γ 2") { Tensor.sigmoidFocalLoss($0[0], targets: targets, alpha: 0.25, gamma: 2) }
        assertGradients([logits], "no α, γ 1.5, sum") {
            Tensor.sigmoidFocalLoss($0[0], targets: targets, alpha: -1, gamma: 1.5, reduction: .sum)
        }
        assertGradients([logits], "γ 0 (weighted BCE), mean") {
            Tensor.sigmoidFocalLoss($0[0], targets: targets, alpha: 0.25, gamma: 0, reduction: .mean)
        }
        assertGradients([logits], "sumDividedBy positives") {
            Tensor.sigmoidFocalLoss($0[0], targets: targets, reduction: .sumDividedBy(5))
        }
    }

    func testSigmoidFocalLossMatchesTorchvision() {
        // torchvision is not installed here: the reference is torchvision.ops.sigmoid_focal_loss's source run on
        // torch 2.13 (p = sigmoid(x); ce = F.binary_cross_entropy_with_logits(x, t, reduction="none");
        // p_t = p*t + (1-p)*(1-t); loss = ce * (1-p_t)**gamma; if alpha >= 0: loss *= alpha*t + (1-alpha)*(1-t)),
        // with x = 3 sin(i) of shape [2,5] and t = (i % 3 == 0).
        let x = sinTensor([2, 5], s: 3, requiresGrad: true)
        let t = Tensor((0..<10).map { $0 % 3 == 0 ? 1 : 0 }, shape: [2, 5])
        let loss = Tensor.sigmoidFocalLoss(x, targets: t)
        assertClose(loss.toArray(), [0.043321699, 1.6724308, 1.8444309, 0.019718682, 0.00064581051, 0.00011679465, 0.14591445,
                                     1.2141575, 2.0477238, 0.0032291769], rtol: 1e-5, atol: 1e-6, "α 0.25 γ 2")
        // x.grad after sigmoid_focal_loss(x, t).sum().backward()
        loss.sum().backward()
        assertClose(x.grad!.toArray(), [-0.074571699, 0.84326953, 0.84656513, -0.03932254, 0.0017858116, 0.00033478843, -0.1731565,
                                        0.80408001, 0.84551275, -0.0078551192], rtol: 1e-5, atol: 1e-6, "gradient")
        // sigmoid_focal_loss(x, t, alpha=-1, gamma=1.5) and sigmoid_focal_loss(x, t, reduction="mean")
        assertClose(Tensor.sigmoidFocalLoss(x, targets: t, alpha: -1, gamma: 1.5).toArray(),
                    [0.24506453, 2.3175011, 2.5383334, 0.1253856, 0.0028144757, 0.00067443785, 0.69855529, 1.7279739, 2.7995911,
                     0.027226515], rtol: 1e-5, atol: 1e-6, "no α, γ 1.5")
        assertClose([Tensor.sigmoidFocalLoss(x, targets: t, reduction: .mean).item()], [0.69916898], rtol: 1e-5, atol: 1e-6, "mean")
        Tape.shared.reset()
    }

    // MARK: L1

    func testL1Loss() {
        // Away from the kink: |p − t| ≥ 0.1 ≫ ε.
        let p = randomTensor([3, 4], "l1.p"), raw = randomTensor([3, 4], "l1.t", requiresGrad: false).toArray()
        let pv = p.toArray()
        let t = Tensor(zip(pv, raw).map { a, b in Swift.abs(a - b) < 0.1 ? a + 0.2 : b }, shape: [3, 4], requiresGrad: true)
        assertGradients([p, t], "none") { Tensor.l1Loss($0[0], $0[1], reduction: .none) }
        assertGradients([p, t], "mean") { Tensor.l1Loss($0[0], $0[1]) }
        // F.l1_loss(sin(i) of shape [2,3], sin(0.5 i), reduction='none') and the default mean.
        let a = sinTensor([2, 3], requiresGrad: true), b = sinTensor([2, 3], a: 0.5)
        assertClose(Tensor.l1Loss(a, b, reduction: .none).toArray(), [0, 0.36204541, 0.06782645, 0.85637498, 1.6660999, 1.5573964],
                    rtol: 1e-5, atol: 1e-6)
        let mean = Tensor.l1Loss(a, b)
        assertClose([mean.item()], [0.75162387], rtol: 1e-5, atol: 1e-6)
        // Gradient: sign(a − b)/6, and 0 at element 0 where a == b (PyTorch's sign(0) = 0).
        mean.backward()
        XCTAssertEqual(a.grad!.toArray(), [0, 1, 1, -1, -1, -1].map { Float($0) / 6 })
    }

    // MARK: embedding

    func testEmbedding() {
        let weight = randomTensor([6, 5], "emb.w")
        let indices: [Int32] = [4, 0, 4, 2, 5, 4, 1]
        assertGradients([weight], "repeated indices") { Tensor.embedding(weight: $0[0], indices: indices) }
        assertGradients([weight], "shaped [1,7]") { Tensor.embedding(weight: $0[0], indices: indices, shape: [1, 7]) }
        let out = Tensor.embedding(weight: weight, indices: indices, shape: [7, 1])
        XCTAssertEqual(out.shape, [7, 1, 5])
        let w = weight.toArray(), o = out.toArray()
        for (j, i) in indices.enumerated() { XCTAssertEqual(Array(o[(j * 5)..<(j * 5 + 5)]), Array(w[(Int(i) * 5)..<(Int(i) * 5 + 5)])) }
        // Backward of sum: each row's gradient counts its occurrences (row 4 three times, row 3 never).
        weight.grad = nil
        Tensor.embedding(weight: weight, indices: indices).sum().backward()
        XCTAssertEqual(weight.grad!.toArray(), [1, 1, 1, 0, 3, 1].flatMap { [Float](repeating: $0, count: 5) })
        // Wide rows exercise the column-blocked scatter-add (several 64-column blocks).
        let wide = randomTensor([3, 150], "emb.wide")
        assertGradients([wide], "wide rows") { Tensor.embedding(weight: $0[0], indices: [2, 2, 0, 2]) }
    }
}
