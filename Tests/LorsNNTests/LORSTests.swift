import XCTest
import LorsTensor
import LorsNN
import LorsModels
import LorsTestSupport

/// A static LORS stack for tests: `shared` plus layers with the given group counts, registered on
/// one container as `shared` and `layers.i` (so shared tensors are named `shared.weight`).
private func makeStack(inFeatures: Int, outFeatures: Int, rank: Int, groups: [Int], randomB: Bool = true) -> (Module, LORSTShared, [LORSTLayer]) {
    let shared = LORSTShared(inFeatures, outFeatures)
    let layers = groups.map { LORSTLayer(shared: shared, rank: rank, groups: $0) }
    let container = Module()
    container.child("shared", shared)
    let list = container.child("layers", Module())
    for (i, l) in layers.enumerated() { list.child("\(i)", l) }
    container.initializeParameters(seed: 5)
    if randomB {
        for (i, l) in layers.enumerated() {
            l.B?.assign(randomTensor(l.B!.shape, "B\(i)", low: -0.5, high: 0.5, requiresGrad: false))
            l.bias?.assign(randomTensor(l.bias!.shape, "bias\(i)", low: -0.5, high: 0.5, requiresGrad: false))
        }
    }
    return (container, shared, layers)
}

final class LORSTTests: XCTestCase {
    func testGradientsBothPaths() {
        let (_, shared, layers) = makeStack(inFeatures: 4, outFeatures: 5, rank: 2, groups: [2])
        let layer = layers[0]
        let x = randomTensor([2, 3, 4], "x")
        for path in [LORSTLayer.Evaluation.materialized, .factored] {
            layer.evaluation = path
            assertGradients([x, shared.weight, layer.A!, layer.B!, layer.bias!], "\(path)") { _ in layer(x) }
        }
    }

    func testZeroGroupsIsSharedWeightPlusBias() {
        let (_, shared, layers) = makeStack(inFeatures: 4, outFeatures: 3, rank: 8, groups: [0])
        let layer = layers[0]
        XCTAssertNil(layer.A)
        XCTAssertEqual(layer.namedParameters().map(\.0), ["bias", "shared.weight"])
        let x = randomTensor([5, 4], "x0", requiresGrad: false)
        assertClose(layer(x), x.matmul(shared.weight, transposeOther: true) + layer.bias!)
        assertGradients([x, shared.weight, layer.bias!]) { _ in layer(x) }
    }

    /// The shared weight's gradient is the sum of what each layer contributes: rebuild the stack with
    /// one private copy of W_sh per layer (same values everywhere) and compare the copies' gradients.
    func testSharedGradientIsSumOfLayerContributions() {
        let groups = [1, 0, 2]
        let (_, shared, layers) = makeStack(inFeatures: 6, outFeatures: 6, rank: 2, groups: groups)
        let copies = groups.map { _ in LORSTShared(6, 6) }
        let separate = zip(copies, layers).map { copy, l -> LORSTLayer in
            copy.weight.assign(shared.weight)
            let s = LORSTLayer(shared: copy, rank: 2, groups: l.groups)
            if let a = l.A { s.A!.assign(a); s.B!.assign(l.B!) }
            s.bias!.assign(l.bias!)
            return s
        }
        let x = randomTensor([3, 6], "x", requiresGrad: false)
        let probe = randomTensor([3, 6], "probe", requiresGrad: false)
        func run(_ stack: [LORSTLayer]) {
            var h = x
            for l in stack { h = l(h).tanh() }
            (h * probe).sum().backward()
        }
        run(layers)
        run(separate)
        let contributions = copies.map { $0.weight.grad!.toArray() }
        for (i, c) in contributions.enumerated() {
            XCTAssertGreaterThan(c.map { Swift.abs($0) }.max()!, 1e-4, "layer \(i) contributes nothing")
        }
        let sum = (0..<contributions[0].count).map { j in contributions.reduce(Float(0)) { $0 + $1[j] } }
        assertClose(shared.weight.grad!.toArray(), sum, rtol: 1e-5, atol: 1e-6)
    }

    func testSharedWeightCountedOnce() {
        let (container, shared, layers) = makeStack(inFeatures: 4, outFeatures: 5, rank: 2, groups: [1, 2, 0])
        let names = container.namedParameters().map(\.0)
        XCTAssertEqual(names.filter { $0.hasSuffix("shared.weight") }, ["shared.weight"])
        XCTAssertEqual(names.count, 1 + 3 + 3 + 1)
        let expected = 5 * 4 + layers.reduce(0) { $0 + $1.totalRank * (4 + 5) + 5 }
        XCTAssertEqual(container.parameterCount, expected)
        XCTAssertTrue(layers.allSatisfy { $0.shared === shared })
    }

    func testMergedEqualsUnmergedAndPathsAgree() {
        let (_, _, layers) = makeStack(inFeatures: 16, outFeatures: 12, rank: 3, groups: [2])
        let layer = layers[0]
        let x = randomTensor([4, 7, 16], "xm", requiresGrad: false)
        let (w, b) = layer.merged()
        let dense = Linear(16, 12)
        dense.weight.assign(w)
        dense.bias!.assign(b!)
        layer.evaluation = .materialized
        let materialized = layer(x)
        layer.evaluation = .factored
        let factored = layer(x)
        assertClose(dense(x), materialized, rtol: 1e-5, atol: 1e-5, "merged vs materialised")
        assertClose(factored, materialized, rtol: 1e-5, atol: 1e-5, "factored vs materialised")
    }

    func testInitialLayersEqualSharedWeight() {
        let (_, shared, layers) = makeStack(inFeatures: 8, outFeatures: 6, rank: 2, groups: [1, 3], randomB: false)
        let x = randomTensor([3, 8], "xi", requiresGrad: false)
        let bound = (6 / Float(8)).squareRoot()
        for l in layers {
            XCTAssertEqual(l.merged().weight.toArray(), shared.weight.toArray())
            assertClose(l(x), x.matmul(shared.weight, transposeOther: true))
            let a = l.A!.toArray()
            XCTAssertTrue(a.allSatisfy { Swift.abs($0) <= bound } && a.contains { Swift.abs($0) > bound / 2 }, "A ~ U(±√(6/in))")
            XCTAssertTrue(l.B!.toArray().allSatisfy { $0 == 0 } && l.bias!.toArray().allSatisfy { $0 == 0 })
        }
    }

    func testAutomaticPathChoice() {
        let (_, _, layers) = makeStack(inFeatures: 192, outFeatures: 576, rank: 32, groups: [1])
        let l = layers[0]
        XCTAssertFalse(l.materializes(rows: 100))  // 192·576/(192+576) = 144 rows break even
        XCTAssertTrue(l.materializes(rows: 200))
        l.evaluation = .factored
        XCTAssertFalse(l.materializes(rows: 10_000))
    }
}

final class LORSATests: XCTestCase {
    private static let ops = [AdaptiveOperatorSpec(name: "m", side: .right, rows: 4, cols: 3),
                              AdaptiveOperatorSpec(name: "s", side: .left, rows: 3, cols: 5)]

    /// Shared + one layer with every parameter random (non-zero), registered as `shared`, `layers.0`.
    private func makeLayer(queryDim: Int = 3, groups: Int = 2, rank: Int = 2, kernelGroups: Int = 2,
                           ops: [AdaptiveOperatorSpec] = LORSATests.ops) -> (LORSAShared, LORSALayer) {
        let shared = LORSAShared(queryDim: queryDim, groups: groups, operators: ops)
        let layer = LORSALayer(shared: shared, rank: rank, kernelGroups: kernelGroups)
        let container = Module()
        container.child("shared", shared)
        container.child("layer", layer)
        for (name, t) in container.namedParameters() {
            t.assign(randomTensor(t.shape, "p." + name, low: -0.6, high: 0.6, requiresGrad: false))
        }
        return (shared, layer)
    }

    private func input(_ op: AdaptiveOperatorSpec, queries: Int, groups: Int, free: Int, _ name: String) -> Tensor {
        randomTensor(op.side == .right ? [queries, groups, free, op.rows] : [queries, groups, op.cols, free], name)
    }

    func testGradientsBothPathsBothSides() {
        let (shared, layer) = makeLayer()
        let q = randomTensor([1, 3, 3], "q")  // [B, N, d_q]
        let params = [shared.generator.weight, shared.generator.bias!, layer.coreGenerator!.weight, layer.coreGenerator!.bias!]
        for (index, op) in layer.operators.enumerated() {
            let x = input(op, queries: 3, groups: 2, free: 2, "x\(index)")
            for path in [LORSALayer.Evaluation.materialized, .factored] {
                layer.evaluation = path
                assertGradients([q, x, layer.left[index], layer.right[index]] + params, "\(op.name) \(path)") { _ in
                    layer.generate(query: q).apply(index, to: x)
                }
            }
        }
    }

    func testFactoredEqualsMaterialized() {
        let ops = AdaptiveOperatorSpec.adaMixer(channelsIn: 12, channelsOut: 10, pointsIn: 8, pointsOut: 6)
        let (_, layer) = makeLayer(queryDim: 7, groups: 2, rank: 3, kernelGroups: 3, ops: ops)
        let q = randomTensor([2, 3, 7], "qf", requiresGrad: false)
        for (index, op) in ops.enumerated() {
            let x = input(op, queries: 6, groups: 2, free: op.side == .right ? 8 : 10, "xf\(index)")
            layer.evaluation = .materialized
            let a = layer.generate(query: q).apply(index, to: x)
            layer.evaluation = .factored
            let b = layer.generate(query: q).apply(index, to: x)
            assertClose(b, a, rtol: 1e-5, atol: 1e-5, op.name)
            // The materialised matrix is Ŵ_sh + Σ_k L_k Z_k R_k for one (query, group), computed by hand.
            let gen = layer.generate(query: q)
            let w = gen.materialized(index).toArray()
            let (query, group, k, r) = (4, 1, layer.kernelGroups, layer.rank)
            var expected = gen.sharedMatrices[index].slice(axis: 0, query..<(query + 1)).slice(axis: 1, group..<(group + 1))
                .reshaped([op.rows, op.cols])
            for kk in 0..<k {
                let gk = group * k + kk
                let l = layer.left[index].slice(axis: 0, gk..<(gk + 1)).reshaped([op.rows, r])
                let z = gen.cores[index].slice(axis: 0, query..<(query + 1)).slice(axis: 1, gk..<(gk + 1)).reshaped([r, r])
                let rr = layer.right[index].slice(axis: 0, gk..<(gk + 1)).reshaped([r, op.cols])
                expected = expected + l.matmul(z).matmul(rr)
            }
            let start = (query * 2 + group) * op.rows * op.cols
            assertClose(Array(w[start..<(start + op.rows * op.cols)]), expected.toArray(), rtol: 1e-5, atol: 1e-6, "\(op.name) by hand")
        }
    }

    /// Generator output layouts match the official code: shared `[Q, G, Σ rows·cols]` (operators in
    /// order, row-major), cores `[Q, n_ops, G·K, r, r]`.
    func testGeneratorLayouts() {
        let (_, layer) = makeLayer()
        let q = randomTensor([3, 3], "ql", requiresGrad: false)
        let gen = layer.generate(query: q)
        let raw = layer.shared.generator(q).toArray(), rawCore = layer.coreGenerator!(q).toArray()
        let ops = LORSATests.ops, sizes = ops.map { $0.rows * $0.cols }, perQuery = 2 * sizes.reduce(0, +)
        let s = gen.sharedMatrices[1].toArray()  // [Q, G, 3, 5]
        let sIndex: Int = ((2 * 2 + 1) * 3 + 2) * 5 + 4  // query 2, group 1, row 2, col 4
        let rawS: Int = 2 * perQuery + perQuery / 2 + sizes[0] + 2 * 5 + 4
        XCTAssertEqual(s[sIndex], raw[rawS])
        let z = gen.cores[1].toArray()  // [Q, G·K = 4, 2, 2]
        let zIndex: Int = ((2 * 4 + 3) * 2 + 1) * 2       // query 2, gk 3, row 1, col 0
        let rawIndex: Int = 2 * 32 + 16 + 3 * 4 + 1 * 2   // query 2 (2 ops · 4 · 2²), op 1, gk 3, row 1, col 0
        XCTAssertEqual(z[zIndex], rawCore[rawIndex])
    }

    /// AdaMixer-LORS (docs/lors.md): shared generator 12,632,064; L/R 172,032; core generators 3,158,016.
    func testAdaMixerStackParameterCounts() {
        let ops = AdaptiveOperatorSpec.adaMixer(channelsIn: 128, channelsOut: 128, pointsIn: 64, pointsOut: 128)
        let stack = LORSAStack(queryDim: 256, groups: 2, operators: ops, rank: 16, kernelGroups: [1, 1, 2, 2, 3, 3])
        let named = stack.namedParameters()
        func count(_ keep: (String) -> Bool) -> Int { named.filter { keep($0.0) }.reduce(0) { $0 + $1.1.count } }
        XCTAssertEqual(count { $0.hasPrefix("shared.") }, 12_632_064)
        XCTAssertEqual(count { $0.hasSuffix(".L") || $0.hasSuffix(".R") }, 172_032)
        XCTAssertEqual(count { $0.contains("core_generator") }, 3_158_016)
        XCTAssertEqual(stack.parameterCount, 12_632_064 + 172_032 + 3_158_016)
        XCTAssertEqual(stack.layers[5].left[1].shape, [6, 128, 16])
        XCTAssertEqual(stack.layers[5].right[1].shape, [6, 16, 64])
    }

    func testOfficialInitialization() {
        let ops = AdaptiveOperatorSpec.adaMixer(channelsIn: 16, channelsOut: 16, pointsIn: 8, pointsOut: 12)
        let shared = LORSAShared(queryDim: 16, groups: 2, operators: ops)
        let layers = [1, 2].map { LORSALayer(shared: shared, rank: 4, kernelGroups: $0) }
        let container = Module()
        container.child("shared", shared)
        for (i, l) in layers.enumerated() { container.child("stage\(i)", l) }
        container.initializeParameters(seed: 3)
        XCTAssertTrue(shared.generator.weight.toArray().allSatisfy { $0 == 0 })
        let bias = shared.generator.bias!.toArray()
        XCTAssertTrue(bias.allSatisfy { Swift.abs($0) <= 0.25 } && bias.contains { $0 != 0 }, "bias U(±1/√d_q)")
        for l in layers {
            XCTAssertTrue(l.coreGenerator!.weight.toArray().allSatisfy { $0 == 0 })
            XCTAssertTrue(l.coreGenerator!.bias!.toArray().allSatisfy { $0 == 0 })
            for (i, op) in ops.enumerated() {
                let lb = (6 / Float(op.rows * 4)).squareRoot(), rb = (6 / Float(4 * op.cols)).squareRoot()
                XCTAssertTrue(l.left[i].toArray().allSatisfy { Swift.abs($0) <= lb })
                XCTAssertTrue(l.right[i].toArray().allSatisfy { Swift.abs($0) <= rb })
                XCTAssertGreaterThan(l.left[i].toArray().map { Swift.abs($0) }.max()!, lb / 2)
            }
            // The private part is exactly zero at step 0: every stage sees the shared matrices.
            let gen = l.generate(query: randomTensor([5, 16], "qi", requiresGrad: false))
            for i in ops.indices { XCTAssertEqual(gen.materialized(i).toArray(), gen.sharedMatrices[i].toArray()) }
        }
        // One copy of the shared generator in the parameter list.
        let names = container.namedParameters().map(\.0)
        XCTAssertEqual(names.filter { $0.contains("generator.weight") && !$0.contains("core") }, ["shared.generator.weight"])
        let expected = 16 * 2 * (16 * 16 + 12 * 8) + 2 * (16 * 16 + 12 * 8)
            + [1, 2].reduce(0) { $0 + 2 * $1 * 4 * (16 + 16 + 12 + 8) + (16 + 1) * 2 * 2 * $1 * 16 }
        XCTAssertEqual(container.parameterCount, expected)

        let paper = LORSAShared(queryDim: 16, groups: 2, operators: ops, initialization: .paper)
        paper.initializeParameters(seed: 3)
        XCTAssertTrue(paper.generator.weight.toArray().contains { $0 != 0 })
    }

    func testZeroGroupsIsSharedOnly() {
        let (_, layer) = makeLayer(kernelGroups: 0)
        XCTAssertNil(layer.coreGenerator)
        let q = randomTensor([2, 3], "qz", requiresGrad: false)
        let gen = layer.generate(query: q)
        let x = input(LORSATests.ops[0], queries: 2, groups: 2, free: 3, "xz")
        assertClose(gen.apply(0, to: x), x.matmul(gen.sharedMatrices[0]))
    }

    func testAutomaticPathChoice() {
        // AdaMixer-LORS ACM: rows = cols = 128, r = 16, P_in = 64 → factored (311 k vs 279 k multiply-adds per query and group).
        let ops = AdaptiveOperatorSpec.adaMixer(channelsIn: 128, channelsOut: 128, pointsIn: 64, pointsOut: 128)
        let layer = LORSALayer(shared: LORSAShared(queryDim: 8, groups: 1, operators: ops), rank: 16, kernelGroups: 1)
        XCTAssertEqual(layer.materializedCost(ops[0], free: 64), 128 * (16 * 144 + 128))
        XCTAssertEqual(layer.factoredCost(ops[0], free: 64), 64 * 16 * 272)
        XCTAssertFalse(layer.materializes(ops[0], free: 64))
        XCTAssertTrue(layer.materializes(ops[0], free: 4096))
    }
}

final class LORSViTTests: XCTestCase {
    private func encoderCount(_ model: Module) -> Int {
        model.namedParameters().filter { $0.0.hasPrefix("blocks.") || $0.0.hasPrefix("lors.") }.reduce(0) { $0 + $1.1.count }
    }

    /// DeiT-Tiny (docs/lors.md): vanilla encoder 5,338,368, LORS encoder 2,536,704, ratio 47.52 %.
    func testDeiTTinyParameterRatio() {
        let vanilla = VisionTransformer(.tiny)
        let lors = VisionTransformer(.tiny, linears: LORSLinearFactory())
        XCTAssertEqual(encoderCount(vanilla), 5_338_368)
        XCTAssertEqual(encoderCount(lors), 2_536_704)
        XCTAssertEqual(String(format: "%.2f", 100 * Double(encoderCount(lors)) / Double(encoderCount(vanilla))), "47.52")
        let names = Set(lors.namedParameters().map(\.0))
        for n in ["lors.qkv.weight", "lors.proj.weight", "lors.fc1.weight", "lors.fc2.weight",
                  "blocks.3.attn.qkv.A", "blocks.3.attn.qkv.B", "blocks.3.attn.qkv.bias", "blocks.11.mlp.fc2.A"] {
            XCTAssertTrue(names.contains(n), n)
        }
        XCTAssertFalse(names.contains { $0.contains("shared") }, "shared tensors must be named under lors.")
        XCTAssertEqual((lors.blocks[11].attn.qkv as! LORSTLayer).totalRank, 192)
        XCTAssertEqual((lors.blocks[0].mlp.fc1 as! LORSTLayer).totalRank, 192)
    }

    func testTargetsSubsetAndInitialization() {
        var c = ViTConfiguration.tiny
        c.depth = 2
        var l = LORSViTConfiguration()
        l.rank = 4
        l.attentionGroups = [1, 2]
        l.feedForwardGroups = [2, 1]
        l.targets = ["qkv", "fc1"]
        let model = VisionTransformer(c, linears: LORSLinearFactory(l))
        model.initializeParameters(seed: 11)
        XCTAssertTrue(model.blocks[1].attn.proj is Linear && model.blocks[1].mlp.fc2 is Linear)
        let names = model.namedParameters().map(\.0)
        XCTAssertEqual(names.filter { $0.hasPrefix("lors.") }, ["lors.qkv.weight", "lors.fc1.weight"])
        let qkvShared = (model.blocks[0].attn.qkv as! LORSTLayer).shared.weight.toArray()
        let std = (qkvShared.reduce(0) { $0 + $1 * $1 } / Float(qkvShared.count)).squareRoot()
        XCTAssertEqual(std, 0.02, accuracy: 0.002, "qkv shared ~ trunc-normal σ 0.02")
        let fc1Shared = (model.blocks[0].mlp.fc1 as! LORSTLayer).shared.weight.toArray()
        let xavier = (6 / Float(192 + 768)).squareRoot()
        XCTAssertTrue(fc1Shared.allSatisfy { Swift.abs($0) <= xavier } && fc1Shared.contains { Swift.abs($0) > xavier * 0.9 })
        // B = 0 at initialisation: every layer's weight is exactly the shared one.
        for b in model.blocks {
            for layer in [b.attn.qkv, b.mlp.fc1] {
                let lors = layer as! LORSTLayer
                XCTAssertEqual(lors.merged().weight.toArray(), lors.shared.weight.toArray())
            }
        }
    }
}

/// The last block computes only the class token's output (the only one the head reads). Reference: the same model
/// run block by block with every token's output computed and the class token sliced afterwards. Loss and every
/// parameter gradient agree (to float rounding of the row-count-dependent small attention products), for the plain
/// ViT and the LORS ViT, with drop-path and training-mode dropout keys in play.
final class ClassTokenLastBlockTests: XCTestCase {
    func testLastBlockClassTokenOnlyMatchesTheFullComputation() {
        var c = ViTConfiguration()
        c.imageSize = 16
        c.patchSize = 4
        c.embedDim = 24
        c.depth = 3
        c.numHeads = 2
        c.numClasses = 7
        c.dropPathRate = 0.2
        var l = LORSViTConfiguration()
        l.rank = 4
        for model in [VisionTransformer(c), VisionTransformer(c, linears: LORSLinearFactory(l))] {
            model.initializeParameters(seed: 3)
            // Non-zero LORS B (the private parts matter) and head (zero-initialised, it would stop every gradient).
            for (name, p) in model.namedParameters() where name.hasSuffix(".B") || name.hasPrefix("head.") {
                p.assign(Tensor(RandomKey(seed: 9, purpose: name).uniforms(p.count, low: -0.05, high: 0.05), shape: p.shape))
            }
            let images = Tensor(RandomKey(seed: 4, purpose: "cls.images").uniforms(3 * 3 * 16 * 16, low: -1, high: 1),
                                shape: [3, 3, 16, 16])
            let targets: [Int32] = [1, 5, 2]
            let context = ForwardContext(training: true, seed: 0, step: 2)
            func gradients(_ forward: () -> Tensor) -> (Float, [String: [Float]]) {
                for p in model.parameters { p.grad = nil }
                let loss = Tensor.crossEntropy(forward(), targets: targets, reduction: .mean)
                loss.backward()
                return (loss.item(), Dictionary(uniqueKeysWithValues: model.namedParameters().map { ($0.0, $0.1.grad!.toArray()) }))
            }
            let pruned = gradients { model(images, context) }
            let full = gradients {
                let b = 3, g = 4
                let patches = images.reshaped([b, 3, g, 4, g, 4]).permuted([0, 2, 4, 1, 3, 5]).reshaped([b, g * g, 48])
                let embedded = patches.matmul(model.patchWeight.reshaped([24, 48]), transposeOther: true) + model.patchBias
                var x = Tensor.concat([model.clsToken.broadcast(to: [b, 1, 24]), embedded], axis: 1) + model.posEmbed
                for block in model.blocks { x = block(x, context) }
                return model.head(model.norm(x.slice(axis: 1, 0..<1).reshaped([b, 24])))
            }
            XCTAssertEqual(pruned.0, full.0, accuracy: 1e-6 * Swift.abs(full.0))
            XCTAssertEqual(Set(pruned.1.keys), Set(full.1.keys))
            for (name, reference) in full.1 {
                let got = pruned.1[name]!
                let scale = reference.map { Swift.abs($0) }.max() ?? 0
                let worst = zip(got, reference).map { Swift.abs($0 - $1) }.max() ?? 0
                XCTAssertLessThanOrEqual(worst, 1e-5 * Swift.max(scale, 1e-3), name)
                XCTAssertTrue(scale > 0 || name.hasSuffix(".B") || name.hasSuffix(".A"), "\(name) has a zero gradient")
            }
        }
    }
}
