import XCTest
@testable import LorsTensor
import LorsTestSupport

/// Tensor of `shape` whose flat element `i` is `Float(f(i))` (f evaluated in Double), so the Python
/// snippets that produced the PyTorch reference values build bit-identical inputs:
/// `torch.tensor([f(i) for i in range(n)], dtype=torch.float64).float().reshape(shape)`.
private func sequence(_ shape: [Int], requiresGrad: Bool = false, _ f: (Double) -> Double) -> Tensor {
    let n = shape.reduce(1, *)
    return Tensor((0..<n).map { Float(f(Double($0))) }, shape: shape, requiresGrad: requiresGrad)
}

/// Distinct values (spacing 0.1 ≫ ε = 1e-2) in random order: no perturbation changes an argmax.
private func distinct(_ shape: [Int], _ name: String) -> Tensor {
    let n = shape.reduce(1, *)
    let perm = RandomKey(seed: 5, purpose: name).permutation(n)
    return Tensor(perm.map { Float($0) * 0.1 - Float(n) * 0.05 }, shape: shape, requiresGrad: true)
}

/// Grid `[N, H_out, W_out, 2]` whose pixel coordinates `ix, iy` have fractional parts in [0.15, 0.85]
/// (kinks of the bilinear interpolant sit at integers; ε = 1e-2 moves ix by ε·W/2 ≤ 0.05), with the
/// integer part in `-2 ... size` so some points are fully, some partly and most not outside the image.
private func offKinkGrid(_ n: Int, _ outH: Int, _ outW: Int, inH: Int, inW: Int, _ name: String) -> Tensor {
    let count = n * outH * outW
    let frac = RandomKey(seed: 9, purpose: name + ".frac").uniforms(2 * count, low: 0.15, high: 0.85)
    let cell = RandomKey(seed: 9, purpose: name + ".cell").uniforms(2 * count, low: 0, high: 1)
    var values = [Float](repeating: 0, count: 2 * count)
    for i in 0..<(2 * count) {
        let size = i % 2 == 0 ? inW : inH
        let k = Float(Int(cell[i] * Float(size + 3)) - 2)  // -2 ... size
        let pixel = k + frac[i]
        values[i] = (2 * pixel + 1) / Float(size) - 1  // inverse of ix = ((x + 1)·size − 1) / 2
    }
    return Tensor(values, shape: [n, outH, outW, 2], requiresGrad: true)
}

/// conv2d, maxPool2d and gridSample: central-difference gradient checks (GradientCheck defaults,
/// ε = 1e-2, rtol 2e-2, atol 2e-3: float32 losses of O(10) terms of O(1) round at ≈ 1e-6, i.e. ≈ 1e-4
/// after dividing by 2ε; conv and bilinear sampling are (piecewise) multilinear, so the truncation error
/// is zero away from kinks) and forward values against PyTorch 2.13 (CPU).
///
/// Forward tolerance rtol 1e-5, atol 2e-6: outputs are sums of at most 12 float32 products of O(1)
/// values; a different summation order (PyTorch's blocked GEMM) changes the result by ≲ 12·2⁻²⁴ ≈ 7e-7,
/// and the literals carry 8 significant digits (≤ 5e-9 relative).
final class ConvSamplingTests: XCTestCase {
    // MARK: conv2d

    func testConv2dGradients() {
        // Groups 2, non-square kernel, stride (2, 1), padding (1, 2), dilation (2, 1), batch 2, bias.
        let x = randomTensor([2, 4, 5, 6], "conv.x"), w = randomTensor([6, 2, 2, 3], "conv.w"), b = randomTensor([6], "conv.b")
        assertGradients([x, w, b], "groups 2") {
            $0[0].conv2d(weight: $0[1], bias: $0[2], stride: (2, 1), padding: (1, 2), dilation: (2, 1), groups: 2)
        }
        // Stride 2, padding 1, dilation 2 on both axes, no bias.
        let w2 = randomTensor([3, 4, 3, 2], "conv.w2")
        assertGradients([x, w2], "dilation 2") {
            $0[0].conv2d(weight: $0[1], stride: (2, 2), padding: (1, 1), dilation: (2, 2))
        }
        // 1×1 stride-1 unpadded: the direct path without im2col, with groups.
        let w3 = randomTensor([4, 2, 1, 1], "conv.w3")
        assertGradients([x, w3, b.slice(axis: 0, 0..<4).detached()], "1x1 direct") {
            $0[0].conv2d(weight: $0[1], bias: $0[2], groups: 2)
        }
        // 1×1 with stride 2 goes through im2col.
        assertGradients([x, w3], "1x1 stride 2") { $0[0].conv2d(weight: $0[1], stride: (2, 2), groups: 2) }
        // Depthwise (groups = C), kernel taller than wide, bias only requires grad through its own input.
        let wd = randomTensor([4, 1, 3, 1], "conv.wd")
        assertGradients([x, wd, b.slice(axis: 0, 0..<4).detached()], "depthwise") {
            $0[0].conv2d(weight: $0[1], bias: $0[2], padding: (1, 0), groups: 4)
        }
    }

    func testConv2dChunkedMatchesUnchunked() {
        // A column budget of one image forces one chunk per image; results must not change.
        let x = randomTensor([3, 4, 5, 6], "chunk.x"), w = randomTensor([6, 2, 2, 3], "chunk.w"), b = randomTensor([6], "chunk.b")
        func run() -> [[Float]] {
            for t in [x, w, b] { t.grad = nil }
            let y = x.conv2d(weight: w, bias: b, stride: (2, 1), padding: (1, 2), dilation: (2, 1), groups: 2)
            y.backward(seed: sequence(y.shape) { sin(0.3 * $0) })
            return [y.toArray(), x.grad!.toArray(), w.grad!.toArray(), b.grad!.toArray()]
        }
        let whole = run()
        let saved = ConvBuffers.maxColumnFloats
        ConvBuffers.maxColumnFloats = 1
        defer { ConvBuffers.maxColumnFloats = saved }
        let chunked = run()
        // Per-image sgemms and weight accumulation in image order: equal up to sgemm blocking (1e-6).
        for (a, e) in zip(chunked, whole) { assertClose(a, e, rtol: 1e-5, atol: 1e-6) }
        XCTAssertTrue(assertGradientsQuiet([x, w, b]) {
            $0[0].conv2d(weight: $0[1], bias: $0[2], stride: (2, 1), padding: (1, 2), dilation: (2, 1), groups: 2)
        }, "chunked gradients")
    }

    func testConv2dMatchesPyTorch() {
        // x = sin(0.37 i), w = 0.5 cos(0.23 i), b = 0.1 i − 0.2:
        // torch.nn.functional.conv2d(x[2,4,4,5], w[4,2,2,3], b[4], stride=(2,1), padding=(1,1), dilation=(2,1), groups=2)
        let xA = sequence([2, 4, 4, 5]) { sin(0.37 * $0) }, wA = sequence([4, 2, 2, 3]) { 0.5 * cos(0.23 * $0) }
        let bA = sequence([4]) { 0.1 * $0 - 0.2 }
        let yA = xA.conv2d(weight: wA, bias: bA, stride: (2, 1), padding: (1, 1), dilation: (2, 1), groups: 2)
        XCTAssertEqual(yA.shape, [2, 4, 2, 5])
        assertClose(yA.toArray(), [
            0.2753551, 0.76126969, 0.85709101, 0.80984014, 0.32699049, -0.032841757, -0.05622974, -0.29866761, -0.52775127, -0.46822321,
            -0.82235485, -1.2573601, -1.0916797, -0.79178023, -0.3172076, -0.32492989, -0.33193344, -0.13113914, 0.073869817, 0.043362819,
            -0.79838324, -1.4345272, -1.4770112, -1.3195888, -0.75737816, -0.32849461, -0.41809854, -0.40331683, -0.33394825, -0.2189779,
            1.2161705, 1.8600816, 1.7238778, 1.3678899, 0.73310149, 0.28763622, 0.32985106, 0.38716674, 0.40561581, 0.3234295,
            -0.82243359, -0.86485767, -0.52168769, -0.13497879, 0.10603683, 0.19278778, 0.38939667, 0.45642036, 0.43460047, 0.21682315,
            0.17223075, -0.053485952, -0.48384207, -0.86224693, -0.83376116, -0.39454773, -0.54027838, -0.63676739, -0.66060734, -0.46861303,
            0.65422612, 0.72253865, 0.2042723, -0.34164134, -0.54216087, 0.13904527, 0.1377144, -0.014997003, -0.16567871, -0.1100833,
            -0.41355833, -0.28128231, 0.36611432, 0.9774937, 0.97598845, -0.098492004, -0.15127018, -0.071317472, 0.031822264, 0.033702135,
        ], rtol: 1e-5, atol: 2e-6, "groups 2")

        // torch.nn.functional.conv2d(x[2,3,2,3], w[2,3,1,1])  (1×1 direct path)
        let yB = sequence([2, 3, 2, 3]) { sin(0.37 * $0) }.conv2d(weight: sequence([2, 3, 1, 1]) { 0.5 * cos(0.23 * $0) })
        XCTAssertEqual(yB.shape, [2, 2, 2, 3])
        assertClose(yB.toArray(), [
            -0.043713443, -0.0099636754, 0.025134621, 0.056831058, 0.0808357, 0.09389957, 0.044574276, 0.094914064, 0.13240768, 0.15198053,
            0.15098357, 0.12955163, -0.0093147149, 0.025763417, 0.057354603, 0.081183091, 0.094023854, 0.094138913, 0.095739469, 0.13294233,
            0.15215206, 0.15076871, 0.12897952, 0.089733578,
        ], rtol: 1e-5, atol: 2e-6, "1x1")

        // torch.nn.functional.conv2d(x[1,2,5,5], w[3,2,3,2], b[3], stride=2, padding=1, dilation=(1,2))
        let yC = sequence([1, 2, 5, 5]) { sin(0.37 * $0) }.conv2d(
            weight: sequence([3, 2, 3, 2]) { 0.5 * cos(0.23 * $0) }, bias: sequence([3]) { 0.1 * $0 - 0.2 },
            stride: (2, 2), padding: (1, 1), dilation: (1, 2))
        XCTAssertEqual(yC.shape, [1, 3, 3, 3])
        assertClose(yC.toArray(), [
            0.51272827, 1.2431707, 0.47923917, -0.54963565, -0.98447096, -0.54295403, 0.23266797, 0.94678265, 0.4378593,
            -0.81288987, -1.3969308, -0.63829315, 0.34481102, 0.6866467, 0.15873072, -0.54187131, -1.0941232, -0.56169188,
            0.61049896, 0.96412176, 0.31991106, -0.47599834, -0.67565978, -0.13728778, 0.38750941, 0.69845468, 0.21910796,
        ], rtol: 1e-5, atol: 2e-6, "stride 2 dilation (1,2)")
    }

    // MARK: maxPool2d

    func testMaxPool2dGradients() {
        let x = distinct([2, 3, 5, 7], "pool.x")
        assertGradients([x], "2x2 default stride") { $0[0].maxPool2d(kernel: (2, 2)) }
        assertGradients([x], "3x2 stride (2,1) pad 1") { $0[0].maxPool2d(kernel: (3, 2), stride: (2, 1), padding: (1, 1)) }
        assertGradients([x], "3x3 stride 1 pad 1 (overlapping)") { $0[0].maxPool2d(kernel: (3, 3), stride: (1, 1), padding: (1, 1)) }
        assertGradients([x], "dilation 2") { $0[0].maxPool2d(kernel: (2, 3), stride: (1, 2), padding: (1, 1), dilation: (2, 2)) }
    }

    func testMaxPool2dMatchesPyTorch() {
        // x = sin(0.37 i): torch.nn.functional.max_pool2d(x[1,2,5,6], (3,2), stride=(2,1), padding=(1,1), dilation=(1,2))
        let y = sequence([1, 2, 5, 6]) { sin(0.37 * $0) }.maxPool2d(kernel: (3, 2), stride: (2, 1), padding: (1, 1), dilation: (1, 2))
        XCTAssertEqual(y.shape, [1, 2, 3, 6])
        // Max pooling selects an input value: exact.
        XCTAssertEqual(y.toArray(), [
            0.52404433, 0.79656547, 0.89569867, 0.99588084, 0.96127522, 0.99588084, 0.67930466, 0.89870811, 0.99647564,
            0.95937485, 0.99647564, 0.95937485, 0.67930466, 0.89870811, 0.99647564, 0.95937485, 0.99647564, 0.95937485,
            0.90167576, 0.99702412, 0.95742989, 0.99702412, 0.95742989, 0.78825206, 0.90167576, 0.99702412, 0.95742989,
            0.99702412, 0.95742989, 0.78825206, 0.99752629, 0.95544052, 0.99752629, 0.95544052, 0.78404033, 0.50652403,
        ])

        // Ties go to the first maximum in scan order. x = round(2 sin(0.37 i)) / 2 (many ties):
        // y = torch.nn.functional.max_pool2d(x[1,1,4,6], 2, stride=1); y.backward(torch.ones_like(y)); x.grad
        let t = sequence([1, 1, 4, 6], requiresGrad: true) { (2 * sin(0.37 * $0)).rounded(.toNearestOrEven) / 2 }
        let yt = t.maxPool2d(kernel: (2, 2), stride: (1, 1))
        XCTAssertEqual(yt.toArray(), [1, 0.5, 1, 1, 1, 1, 0.5, 0, 0, 0, 0.5, 1, 1, 1, 1])
        yt.backward(seed: Tensor.ones(yt.shape))
        XCTAssertEqual(t.grad!.toArray(), [0, 1, 0, 2, 1, 0, 2, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 1, 1, 0, 2, 1, 1, 0])
    }

    // MARK: gridSample

    func testGridSampleGradients() {
        // Batch 2, non-square input, points partly and fully outside the image.
        let x = randomTensor([2, 3, 4, 5], "gs.x")
        let grid = offKinkGrid(2, 3, 4, inH: 4, inW: 5, "gs.grid")
        assertGradients([x, grid], "input and grid") { $0[0].gridSample($0[1]) }
        // AdaMixer layout: N = batch·groups, H_out = queries, W_out = points; gradient to the grid only.
        let feat = randomTensor([6, 2, 6, 3], "gs.feat", requiresGrad: false)
        let g2 = offKinkGrid(6, 5, 4, inH: 6, inW: 3, "gs.grid2")
        assertGradients([feat, g2], "grid only") { $0[0].gridSample($0[1]) }
        // Gradient to the input only (grid constant).
        let x3 = randomTensor([6, 2, 6, 3], "gs.x3")
        assertGradients([x3, g2.detached()], "input only") { $0[0].gridSample($0[1]) }
    }

    func testGridSampleMatchesPyTorch() {
        // x = sin(0.37 i), grid = 1.3 sin(0.91 i + 0.5) (some points outside), gOut = cos(0.5 i):
        // y = torch.nn.functional.grid_sample(x[2,3,4,5], grid[2,3,4,2], mode="bilinear", padding_mode="zeros",
        //                                     align_corners=False); y.backward(gOut); grid.grad
        let x = sequence([2, 3, 4, 5], requiresGrad: true) { sin(0.37 * $0) }
        let grid = sequence([2, 3, 4, 2], requiresGrad: true) { 1.3 * sin(0.91 * $0 + 0.5) }
        let y = x.gridSample(grid)
        XCTAssertEqual(y.shape, [2, 3, 3, 4])
        assertClose(y.toArray(), [
            0, -0.234485, 0, -0.39109796, 0, 0.099697217, 0.032856334, 0, 0.02902972, 0, -0.1193037, 0,
            0, -0.4343577, 0.01126637, 0.57973504, 0, 0.19661006, 0.0096958419, 0, -0.7006591, 0.001041205, 0.56383049, 0,
            0, -0.14648785, 0.0098816724, 0.89958048, 0, 0.072748415, -0.024352161, 0, -0.64357412, 0.0009132353, 0.61383641, 0,
            -0.01297911, -0.11046436, 0, -0.50435698, 0, -0.09847825, 0, 0, 0.24095491, -0.012491898, -0.95085043, 0,
            -0.025219163, 0.10778669, 0, 0.088695876, 0, -0.39852896, 0, 0, 0.50738704, -0.013410787, -0.63859302, 0,
            -0.0091404831, 0.2050035, 0, 0.58215171, 0, -0.25106937, 0, 0, 0.2040716, 0.00072936737, 0.39074403, 0,
        ], rtol: 1e-5, atol: 2e-6, "forward")
        y.backward(seed: sequence(y.shape) { cos(0.5 * $0) })
        // Grid gradients are O(W/2 · C) sums: atol 1e-5.
        assertClose(grid.grad!.toArray(), [
            0, 0, 3.1283207, 2.3530519, 0.16286917, 0.74661332, 0.28096595, 2.2748814, 0, 0, -0.052960996, -2.2344832,
            -1.4901286, 0.070725232, 0, 0, 0.53764558, 4.2868042, -0.57008046, -0.0097795809, 0.26695722, 0.56570923, 0, 0,
            -0.011739455, -1.6230512, 0.85957056, 1.0999457, 0, 0, 0.95604575, 4.7566276, 0, 0, 0.17750084, 0.92877495,
            0, 0, 0, 0, -3.3646064, -2.4201632, -0.25368661, -0.69665867, -1.0284808, -4.0822225, 0, 0,
        ], rtol: 1e-5, atol: 1e-5, "grid gradient")
        // ... and x.grad
        assertClose(x.grad!.toArray(), [
            0.0023956678, -0.091025427, -0.069637299, -0.0043574977, -0.10906639, -0.033837888, 0, 0, -0.020754062, -0.12235266,
            0.00013730406, 0.0041317153, 0, 0, 0.14720567, 0.0021378098, 0.1615786, 0.10357539, 0, 0,
            0.0050959466, -0.068400212, -0.052328303, -0.0055936482, -0.14000672, -0.031142382, 0, 0, -0.026641646, -0.22491592,
            0.00067283463, 0.020246752, 0, 0, 0.16381277, 0.010475964, 0.31675702, 0.0016159833, 0, 0,
            0.007390284, -0.040326267, -0.030850857, -0.0063842116, -0.15979421, -0.025966091, 0, 0, -0.030406974, -0.30956253,
            0.0011547676, 0.034748942, 0, 0, 0.16737063, 0.017979609, 0.44670275, -0.10047215, 0, 0,
            0.0018660566, 0.014958833, -0.019673215, -0.261693, 0.23024242, 0.053306207, 0, -0.00023987987, 0.15907572, 0.15526992,
            -0.42878437, 0, 0, 0, 0, 0, 0, -0.030030496, -0.0025487067, -0.013357726,
            0.0011987309, 0.009609364, -0.027619718, -0.42403921, 0.27002347, 0.03090246, 0, -0.00033677332, 0.18513247, 0.18209732,
            -0.42314115, 0, 0, 0, 0, 0, 0, 0.076293938, 0.0064751138, -0.014907792,
            0.00043591499, 0.0034944168, -0.033366047, -0.55260658, 0.28829461, 0.0060370564, 0, -0.00040683956, 0.19644165, 0.19441892,
            -0.3837907, 0, 0, 0, 0, 0, 0, 0.17654085, 0.014983131, -0.015270312,
        ], rtol: 1e-5, atol: 2e-6, "input gradient")
    }

    // MARK: determinism

    func testKernelsIndependentOfThreadCount() {
        // AdaMixer-like sampling (N = batch·groups, H_out = queries, W_out = points) and pooling, run with
        // 1 and 3 threads (enough work that the kernels really split): results must be bit-identical.
        let x = randomTensor([8, 16, 12, 12], "det.x")
        let grid = randomTensor([8, 20, 8, 2], "det.grid", low: -1.1, high: 1.1)
        let pooled = randomTensor([8, 16, 24, 24], "det.pool")
        func run() -> [[Float]] {
            for t in [x, grid, pooled] { t.grad = nil }
            let y = x.gridSample(grid)
            y.backward(seed: sequence(y.shape) { sin(0.1 * $0) })
            let p = pooled.maxPool2d(kernel: (3, 3), stride: (2, 2), padding: (1, 1))
            p.backward(seed: sequence(p.shape) { cos(0.1 * $0) })
            return [y.toArray(), x.grad!.toArray(), grid.grad!.toArray(), p.toArray(), pooled.grad!.toArray()]
        }
        let saved = Threading.threads
        defer { Threading.setThreads(saved) }
        Threading.setThreads(1)
        let serial = run()
        Threading.setThreads(3)
        let threaded = run()
        for (i, (a, b)) in zip(threaded, serial).enumerated() { XCTAssertEqual(a, b, "output \(i) depends on the thread count") }
    }
}

/// `GradientCheck().run` without failing the test: true when there are no mismatches.
private func assertGradientsQuiet(_ inputs: [Tensor], _ function: ([Tensor]) -> Tensor) -> Bool {
    GradientCheck().run(inputs: inputs, function).isEmpty
}
