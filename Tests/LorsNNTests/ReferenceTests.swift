import XCTest
import LorsTensor
import LorsNN
import LorsModels
import LorsTestSupport

/// Compares our ops and modules with PyTorch (fixtures from `scripts/make_fixtures.py`).
///
/// Tolerances: the references are computed in float64 from the stored float32 inputs and rounded
/// once, so they are the exact answers to ~6e-8 relative. Our float32 kernels round every product
/// and partial sum (dot products of ≤ 64 terms, in a BLAS-dependent order), so single ops land
/// within a few ulps (rtol 1e-5 leaves ~80 ulps of room) and atol 1e-6 covers elements that cancel
/// to ~0. The transformer block chains about 15 ops (two LayerNorms dividing by σ, softmax, GELU)
/// and its gradients add the backward chain, so errors amplify by the conditioning of the chain:
/// forward rtol 1e-5 / atol 1e-5 on O(1) outputs and gradients rtol 1e-4 / atol 1e-5 (the largest
/// gradient entries are O(10), summed over 10 rows × 2 heads).
final class ReferenceOpTests: XCTestCase {
    func testOpsMatchPyTorch() throws {
        let f = try ReferenceFixture("ops")
        let t = { (key: String) in f.tensor(key) }
        assertClose(t("matmul.a").matmul(t("matmul.b"), transposeOther: true), t("matmul.out"), "matmul")
        assertClose(t("softmax.x").softmax(axis: -1), t("softmax.out"), "softmax")
        assertClose(t("softmax.x").logSoftmax(axis: -1), t("log_softmax.out"), "log_softmax")
        assertClose(t("layer_norm.x").layerNorm(lastDims: 1, weight: t("layer_norm.weight"), bias: t("layer_norm.bias"), eps: 1e-5),
                    t("layer_norm.out"), "layer_norm")
        assertClose(t("gelu.x").gelu(), t("gelu.out"), "gelu")
        let targets = f.ints("cross_entropy.targets").map(Int32.init)
        XCTAssertEqual(targets.count, 4)
        let ce = Tensor.crossEntropy(t("cross_entropy.logits"), targets: targets, labelSmoothing: 0.1)
        assertClose(ce.toArray(), t("cross_entropy.out").toArray(), "cross_entropy")
        let stride = f.ints("conv2d", "stride"), padding = f.ints("conv2d", "padding")
        let conv = t("conv2d.x").conv2d(weight: t("conv2d.weight"), bias: t("conv2d.bias"), stride: (stride[0], stride[1]),
                                        padding: (padding[0], padding[1]), groups: 2)
        assertClose(conv, t("conv2d.out"), "conv2d")
        let pool = t("max_pool2d.x").maxPool2d(kernel: (3, 3), stride: (2, 2), padding: (1, 1))
        assertClose(pool, t("max_pool2d.out"), rtol: 0, atol: 0, "max_pool2d")
        assertClose(t("grid_sample.x").gridSample(t("grid_sample.grid")), t("grid_sample.out"), "grid_sample")
        assertClose(t("group_norm.x").groupNorm(groups: f.int("group_norm.groups"), weight: t("group_norm.weight"),
                                                bias: t("group_norm.bias"), eps: 1e-5), t("group_norm.out"), "group_norm")
    }
}

final class ReferenceBlockTests: XCTestCase {
    /// A one-block model named like the ViT (`lors.<role>.weight`, `blocks.0.*`), loaded from `f`.
    private func makeBlock(_ f: ReferenceFixture, linears: BlockLinearFactory) -> (Module, TransformerBlock) {
        var c = ViTConfiguration()
        c.embedDim = f.int("dim")
        c.numHeads = f.int("heads")
        c.mlpRatio = Double(f.int("mlp")) / Double(c.embedDim)
        c.depth = 1
        c.layerNormEps = 1e-6
        let block = TransformerBlock(index: 0, config: c, dropPath: 0, linears: linears)
        let model = Module()
        if let extra = linears.extraModules { model.child("lors", extra) }
        model.child("blocks", Module()).child("0", block)
        return (model, block)
    }

    /// Loads every parameter by name, runs forward and backward(probe), compares output and all gradients.
    private func check(_ f: ReferenceFixture, _ model: Module, _ block: TransformerBlock, _ label: String) {
        let params = model.namedParameters()
        let fixtureParams = Set(f.index.keys.filter { !$0.hasPrefix("grad.") && !["input", "probe", "output"].contains($0) })
        XCTAssertEqual(Set(params.map(\.0)), fixtureParams, "parameter names \(label)")
        for (name, p) in params {
            p.assign(f.tensor(name))
            p.grad = nil
        }
        let x = f.tensor("input", requiresGrad: true)
        let out = block(x, .inference)
        assertClose(out, f.tensor("output"), rtol: 1e-5, atol: 1e-5, "output \(label)")
        out.backward(seed: f.tensor("probe"))
        assertClose(x.grad!, f.tensor("grad.input"), rtol: 1e-4, atol: 1e-5, "grad input \(label)")
        for (name, p) in params {
            guard let g = p.grad else { XCTFail("no gradient for \(name) \(label)"); continue }
            assertClose(g, f.tensor("grad." + name), rtol: 1e-4, atol: 1e-5, "grad \(name) \(label)")
        }
    }

    func testViTBlockMatchesPyTorch() throws {
        let f = try ReferenceFixture("vit_block")
        let (model, block) = makeBlock(f, linears: DenseLinearFactory())
        check(f, model, block, "vit")
    }

    func testLORSBlockMatchesPyTorchOnBothPaths() throws {
        let f = try ReferenceFixture("lors_block")
        var l = LORSViTConfiguration()
        l.rank = f.int("rank") / 2  // two groups folded into the stored rank-(K·r) pair
        l.attentionGroups = [2]
        l.feedForwardGroups = [2]
        let (model, block) = makeBlock(f, linears: LORSLinearFactory(l))
        let layers = [block.attn.qkv, block.attn.proj, block.mlp.fc1, block.mlp.fc2].map { $0 as! LORSTLayer }
        XCTAssertTrue(f.tensor("blocks.0.attn.qkv.B").toArray().contains { $0 != 0 }, "fixture B must be non-zero")
        for path in [LORSTLayer.Evaluation.materialized, .factored] {
            for layer in layers { layer.evaluation = path }
            check(f, model, block, "lors \(path)")
        }
    }
}
