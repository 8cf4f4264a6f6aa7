import Foundation
import XCTest
import LorsModels
import LorsNN
import LorsTensor
import LorsTestSupport

/// AdaMixer building blocks: exact parameter counts (docs/lors.md), box geometry against hand-computed values,
/// a forward pass of the whole detector, and central-difference gradient checks of reduced stages.
final class AdaMixerTests: XCTestCase {
    // MARK: Parameter counts (docs/lors.md, "Parameter counts")

    func testVanillaStageCountsMatchSpecTable() {
        let stage = AdaMixerDecoderStage(index: 0, config: .r50)
        func count(_ prefix: String) -> Int {
            stage.namedParameters().filter { $0.0.hasPrefix(prefix) }.reduce(0) { $0 + $1.1.count }
        }
        XCTAssertEqual(count("attention."), 263_168)
        XCTAssertEqual(count("ffn."), 1_050_880)
        XCTAssertEqual(count("sampling_offset."), 98_688)
        XCTAssertEqual(count("mixing.parameter_generator."), 8_421_376)
        XCTAssertEqual(count("mixing.out_proj."), 8_388_864)
        XCTAssertEqual(count("iof_tau"), 8)
        XCTAssertEqual(count("fc_cls."), 20_560)
        XCTAssertEqual(count("fc_reg."), 1_028)
        XCTAssertEqual(count("cls_fc.") + count("reg_fc."), 2 * 65_792)
        XCTAssertEqual(stage.parameterCount, 18_378_716)
    }

    func testFactorizedAdaptiveMixingHasExactlySpecCount() {
        let mixing = FactorizedAdaptiveMixing(contentDim: 256, groups: 2, inPoints: 64, outPoints: 128,
                                              settings: AdaMixerLORSConfiguration())
        XCTAssertEqual(mixing.parameterCount, 25_940_480)
        func count(_ filter: (String) -> Bool) -> Int { mixing.namedParameters().filter { filter($0.0) }.reduce(0) { $0 + $1.1.count } }
        XCTAssertEqual(count { $0.hasPrefix("shared.generator.") }, 12_632_064)
        XCTAssertEqual(count { $0.hasSuffix("_left") || $0.hasSuffix("_right") }, 172_032)
        XCTAssertEqual(count { $0.hasPrefix("private.") && $0.contains(".generator.") }, 3_158_016)
        XCTAssertEqual(count { $0 == "shared.out_proj.weight" }, 8_388_608)
        XCTAssertEqual(count { $0.hasSuffix(".out_A") || $0.hasSuffix(".out_B") }, 1_585_152)
        XCTAssertEqual(count { $0.hasSuffix(".out_bias") }, 1_536)
        XCTAssertEqual(count { $0.contains(".out_norm.") }, 3_072)
    }

    func testLORSDecoderSharesOneMixingModuleAndCountsItOnce() {
        let decoder = AdaMixerDecoder(.r50LORS)
        XCTAssertEqual(decoder.parameterCount, 35_348_264)
        XCTAssertTrue(decoder.stages.allSatisfy { $0.mixing === decoder.lorsMixing })
        XCTAssertFalse(decoder.namedParameters().contains { $0.0.contains("stages.0.mixing") })
        XCTAssertEqual(AdaMixerDecoder(.r50).parameterCount, 110_272_296)
    }

    /// The detector's LORS mixing is built from the generic LORSA/LORST layers: with every parameter non-zero, the
    /// factored path (`((X·L)·Z(q))·R`, `L·(Z(q)·(R·X))`, `x·W_shᵀ + (x·Aᵀ)·Bᵀ`) and the materialised one give the same
    /// output and the same gradient for every parameter and input (1e-5), on stages with K = 1 and K = 3.
    func testLORSMixingFactoredEqualsMaterialized() {
        var settings = AdaMixerLORSConfiguration()
        settings.lorsaRank = 3
        settings.lorsaGroups = [1, 3]
        settings.lorstRank = 2
        settings.lorstGroups = [1, 2]
        let mixing = FactorizedAdaptiveMixing(contentDim: 16, groups: 2, inPoints: 6, outPoints: 5, settings: settings)
        for (name, t) in mixing.namedParameters() {
            t.assign(randomTensor(t.shape, "mixpaths." + name, low: -0.5, high: 0.5, requiresGrad: false))
        }
        let query = randomTensor([2, 3, 16], "mixpaths.query")
        let sampled = randomTensor([2, 3, 2, 6, 8], "mixpaths.sampled")
        let seed = randomTensor([2, 3, 16], "mixpaths.seed", requiresGrad: false)
        let inputs = mixing.namedParameters() + [("query", query), ("sampled", sampled)]
        for stage in 0..<2 {
            var results: [(Tensor, [Tensor])] = []
            for path in [LORSTLayer.Evaluation.materialized, .factored] {
                mixing.setEvaluation(path)
                for (_, t) in inputs { t.grad = nil }
                Tape.shared.reset()
                let out = mixing.mix(stage: stage, sampled: sampled, query: query)
                out.backward(seed: seed)
                results.append((out.detached(), inputs.map { $0.1.grad ?? Tensor.zeros($0.1.shape) }))
                Tape.shared.reset()
            }
            assertClose(results[1].0, results[0].0, rtol: 1e-5, atol: 1e-5, "stage \(stage) output")
            for (i, (name, _)) in inputs.enumerated() {
                assertClose(results[1].1[i], results[0].1[i], rtol: 1e-5, atol: 1e-5, "stage \(stage) gradient of \(name)")
            }
        }
        mixing.setEvaluation(.automatic)
    }

    /// The paper's setting (2 groups × 64 points → 128, C_g 128, r 16), per query and group: M (X has P_in = 64 rows)
    /// is applied factored (279 k vs 311 k multiply-adds per group k), S (X has C_g = 128 columns) is materialised
    /// (172 k vs 426 k); W_o (break-even out·in/(in+out) = 254 rows) is factored for 100 queries, materialised for 300.
    func testLORSMixingPathChoiceAtPaperSize() {
        let mixing = FactorizedAdaptiveMixing(contentDim: 256, groups: 2, inPoints: 64, outPoints: 128,
                                              settings: AdaMixerLORSConfiguration())
        let small = mixing.flopReport(batch: 1, queries: 100)
        XCTAssertEqual(small.count, 18)
        XCTAssertEqual(small.filter { $0.weight == "M" }.map(\.materialized), [Bool](repeating: false, count: 6))
        XCTAssertEqual(small.filter { $0.weight == "W_o" }.map(\.materialized), [Bool](repeating: false, count: 6))
        XCTAssertEqual(small.filter { $0.weight == "S" }.map(\.materialized), [Bool](repeating: true, count: 6))
        XCTAssertTrue(small.allSatisfy { $0.chosen == min($0.materializedMACs, $0.factoredMACs) })
        XCTAssertEqual(mixing.flopReport(batch: 1, queries: 300).filter { $0.weight == "W_o" }.map(\.materialized),
                       [Bool](repeating: true, count: 6))
        // W_o, 100 rows, rank 8: 256·32768·8 + 100·32768·256 materialised, 100·32768·256 + 100·8·(32768 + 256) factored.
        let wo = small.first { $0.weight == "W_o" }!
        XCTAssertEqual(wo.materializedMACs, 256 * 32768 * 8 + 100 * 32768 * 256)
        XCTAssertEqual(wo.factoredMACs, 100 * 32768 * 256 + 100 * 8 * (32768 + 256))
    }

    // MARK: Box geometry (hand-computed)

    func testIoFBiasMatchesHandComputedValues() {
        // A = (0, 0, 4, 4): x 2, y 2, z log2 4 = 2, r 0. B = (2, 2, 6, 10): w 4, h 8 → z = log2 √32 = 2.5, r = 1.
        // C = (20, 20, 21, 21) far away. ∩(A, B) = [2, 4]² = 4; area A 16, B 32.
        let boxes = Tensor([2, 2, 2, 0, 4, 6, 2.5, 1, 20.5, 20.5, 0, 0], shape: [1, 3, 4])
        let v = BoxGeometry.logIoF(boxes).toArray()
        let expected: [Float] = [log(1 + 1e-7), log(0.25 + 1e-7), log(1e-7),
                                 log(0.125 + 1e-7), log(1 + 1e-7), log(1e-7),
                                 log(1e-7), log(1e-7), log(1 + 1e-7)]
        assertClose(v, expected, rtol: 1e-5, atol: 1e-5)
        let decoded = BoxGeometry.decode([4, 6, 2.5, 1][...])
        assertClose([decoded.0, decoded.1, decoded.2, decoded.3], [2, 2, 6, 10], rtol: 1e-6, atol: 1e-5)
    }

    func testBoxRefinementScalesXYByTwoToTheZ() {
        let xyzr = Tensor([10, 20, 3, 0.5, 0, 0, -1, 0], shape: [1, 2, 4])
        let delta = Tensor([0.1, -0.2, 0.3, -0.4, 1, 1, 1, 1], shape: [1, 2, 4], requiresGrad: true)
        let refined = BoxGeometry.refine(xyzr, delta: delta)
        // x, y += Δ·2^z: 2^3 = 8 → 10.8, 18.4; 2^−1 = 0.5 → 0.5, 0.5. z, r += Δ.
        assertClose(refined.toArray(), [10.8, 18.4, 3.3, 0.1, 0.5, 0.5, 0, 1], rtol: 1e-6, atol: 1e-6)
        refined.backward(seed: Tensor.ones([1, 2, 4]))
        assertClose(delta.grad!.toArray(), [8, 8, 1, 1, 0.5, 0.5, 1, 1])
    }

    func testPositionalEncodingInterleavesSinCos() {
        let pe = BoxGeometry.positionalEncoding(Tensor([500, 250, 3, -1], shape: [1, 1, 4]), features: 64).toArray()
        XCTAssertEqual(pe.count, 256)
        let t = Float(pow(10000.0, 2.0 / 64))
        assertClose([pe[0], pe[1], pe[2], pe[3]], [sin(0.5), cos(0.5), sin(0.5 / t), cos(0.5 / t)], rtol: 1e-5, atol: 1e-6)
        assertClose([pe[64], pe[128], pe[129], pe[192]], [sin(0.25), sin(3), cos(3), sin(-1)], rtol: 1e-5, atol: 1e-6)
    }

    func testSamplingOffsetBiasIsAGridForSquarePointCounts() {
        let grid = AdaMixerDecoderStage.offsetBiasForTesting(groups: 1, points: 4)
        assertClose(grid, [-0.25, -0.25, -1, -0.25, 0.25, -1, 0.25, -0.25, -1, 0.25, 0.25, -1])
        let random = AdaMixerDecoderStage.offsetBiasForTesting(groups: 2, points: 32)
        XCTAssertTrue(stride(from: 0, to: random.count, by: 3).allSatisfy { abs(random[$0]) <= 0.5 && random[$0 + 2] == -1 })
    }

    // MARK: Forward and gradients

    /// Reduced decoder settings (content 16, 2 heads, 2 groups × 4 points → 4, 2 stages): the same as the PyTorch fixture.
    static func reduced(lors: Bool) -> AdaMixerConfiguration {
        var c = AdaMixerConfiguration()
        c.contentDim = 16
        c.numHeads = 2
        c.samplingGroups = 2
        c.inPoints = 4
        c.outPoints = 4
        c.feedforwardChannels = 32
        c.numClasses = 3
        c.numStages = 2
        c.numQueries = 4
        if lors {
            var l = AdaMixerLORSConfiguration()
            l.lorsaRank = 2
            l.lorsaGroups = [1, 2]
            l.lorstRank = 2
            l.lorstGroups = [1, 1]
            c.lors = l
        }
        return c
    }

    func testDetectorForwardRunsOnSmallImages() {
        var c = AdaMixerTests.reduced(lors: true)
        c.contentDim = 64
        c.numHeads = 4
        c.numQueries = 5
        let detector = AdaMixerDetector(c)
        detector.initializeParameters(seed: 3)
        XCTAssertFalse(detector.backbone.conv1.weight.requiresGrad, "stem is frozen")
        XCTAssertTrue(detector.backbone.layers[1][0].conv1.weight.requiresGrad)
        let images = randomTensor([2, 3, 64, 64], "adamixer.images", requiresGrad: false)
        let outputs = withoutGradients { detector(images) }
        XCTAssertEqual(outputs.count, 2)
        for out in outputs {
            XCTAssertEqual(out.classLogits.shape, [2, 5, 3])
            XCTAssertEqual(out.boxes.shape, [2, 5, 4])
            XCTAssertEqual(out.content.shape, [2, 5, 64])
            XCTAssertTrue(out.boxes.toArray().allSatisfy(\.isFinite) && out.classLogits.toArray().allSatisfy(\.isFinite))
        }
        // Initial boxes: the whole 64×64 image → (32, 32, log2 64 = 6, 0); fc_reg is zero-initialised.
        assertClose(outputs[0].boxes.toArray(), [Float](repeating: 0, count: 40).enumerated().map { [32, 32, 6, 0][$0.offset % 4] },
                    rtol: 1e-6, atol: 1e-5)
    }

    /// Central-difference checks of a few parameters of each stage kind, one stage at a time (the decoder detaches the
    /// boxes between stages, so a finite difference through two stages sees a path the gradient deliberately omits).
    /// Weights come from the PyTorch fixture, so nothing is trivially zero. ε = 1e-3 in float32: the loss Σ out ⊙ W is
    /// O(10), its rounding noise ~1e-6/ε = 1e-3. The stage is full of kinks (1,000+ ReLUs after the mixing LayerNorms,
    /// bilinear sampling), and a perturbation of a weight that feeds every query can cross one, so this check allows
    /// rtol 0.1 / atol 2e-2: it catches wrong structure (O(1) errors); exactness is checked against PyTorch
    /// (AdaMixerReferenceTests, rtol 2e-3). The sampling-offset weights are left to that test: their ±ε moves 32 sample
    /// points at once across pixel boundaries of 1×1/2×2 maps, where the bilinear derivative jumps.
    func testGradientsOfReducedStagesMatchCentralDifferences() throws {
        let fixture = try AdaMixerFixture.load()
        for lors in [false, true] {
            let decoder = AdaMixerDecoder(AdaMixerTests.reduced(lors: lors))
            try fixture.loadParameters(into: decoder, model: lors ? "lors" : "vanilla")
            let inputs = try fixture.inputs()
            let params = Dictionary(uniqueKeysWithValues: decoder.namedParameters())
            for stage in 0..<2 {
                var names = ["iof_tau", "attention.qkv.weight", "attention.proj.bias", "fc_reg.weight", "ffn.fc1.weight"].map { "stages.\(stage).\($0)" }
                names += lors ? ["mixing.shared.generator.weight", "mixing.private.\(stage).generator.weight",
                                 "mixing.private.\(stage).m_left", "mixing.private.\(stage).s_right", "mixing.private.\(stage).out_A",
                                 "mixing.shared.out_proj.weight"]
                              : ["stages.\(stage).mixing.parameter_generator.weight", "stages.\(stage).mixing.out_proj.weight"]
                let checked = try names.map { try XCTUnwrap(params[$0], $0) }
                let check = GradientCheck(epsilon: 1e-3, relativeTolerance: 0.1, absoluteTolerance: 2e-2, maxElementsPerInput: 6)
                assertGradients(checked + [inputs.content], check: check, "\(lors ? "lors" : "vanilla") stage \(stage)") { _ in
                    AdaMixerFixture.flatten([decoder.stages[stage](inputs.features, xyzr: inputs.xyzr, content: inputs.content)])
                }
            }
        }
    }
}

extension AdaMixerDecoderStage {
    static func offsetBiasForTesting(groups: Int, points: Int) -> [Float] {
        let stage = AdaMixerDecoderStage(index: 0, config: {
            var c = AdaMixerConfiguration()
            c.contentDim = 8
            c.numHeads = 2
            c.samplingGroups = groups
            c.inPoints = points
            c.outPoints = 2
            c.feedforwardChannels = 8
            c.numClasses = 2
            return c
        }())
        stage.initializeParameters(seed: 1)
        return stage.samplingOffset.bias!.toArray()
    }
}
