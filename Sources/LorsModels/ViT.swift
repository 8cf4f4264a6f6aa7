import LorsTensor
import LorsNN

/// Shape and regularisation settings of a ViT/DeiT classifier.
public struct ViTConfiguration: Sendable {
    public var imageSize = 32
    public var inChannels = 3
    public var patchSize = 4
    public var numClasses = 100
    public var embedDim = 192
    public var depth = 12
    public var numHeads = 3
    public var mlpRatio: Double = 4
    public var qkvBias = true
    public var dropRate: Float = 0
    public var attnDropRate: Float = 0
    public var dropPathRate: Float = 0
    public var layerNormEps: Float = 1e-6

    public init() {}

    /// The `vit-tiny` model of `lors-bench step`: 32×32×3, patch 4, dim 192, 12 blocks, 3 heads, MLP 768, 100 classes.
    public static var tiny: ViTConfiguration { ViTConfiguration() }

    /// Tokens per image (patches + class token).
    public var tokens: Int { (imageSize / patchSize) * (imageSize / patchSize) + 1 }
    /// Hidden width of the MLP.
    public var mlpDim: Int { Int((Double(embedDim) * mlpRatio).rounded()) }
}

/// Builds the four linears of block `layer` (`role` ∈ qkv, proj, fc1, fc2). The vanilla builder
/// makes `Linear`s; the LORS builder makes LORST layers that share weights across blocks.
public protocol BlockLinearFactory {
    func makeLinear(layer: Int, role: String, inFeatures: Int, outFeatures: Int, bias: Bool) -> Module & TensorMap
    /// Modules owned by the factory rather than by one block (LORS shared weights), registered on the
    /// model as `lors` before `blocks` so shared tensors get their canonical names (`lors.qkv.weight`).
    /// Read after every block was built.
    var extraModules: Module? { get }
}

public extension BlockLinearFactory {
    var extraModules: Module? { nil }
}

/// Plain DeiT linears: weights truncated-normal σ=0.02, biases zero (timm's `_init_weights`).
public struct DenseLinearFactory: BlockLinearFactory {
    public init() {}
    public func makeLinear(layer: Int, role: String, inFeatures: Int, outFeatures: Int, bias: Bool) -> Module & TensorMap {
        Linear(inFeatures, outFeatures, bias: bias, weightInit: .truncatedNormal(std: 0.02), biasInit: .zeros)
    }
}

/// Pre-norm transformer block: `x + attn(LN(x))`, then `x + mlp(LN(x))`, each with drop-path.
public final class TransformerBlock: Module {
    public let norm1: LayerNorm
    public let attn: MultiHeadSelfAttention
    public let norm2: LayerNorm
    public let mlp: FeedForward
    public let dropPath: Float
    public let site: String

    public init(index: Int, config c: ViTConfiguration, dropPath: Float, linears: BlockLinearFactory) {
        self.site = "blocks.\(index)"
        self.dropPath = dropPath
        norm1 = LayerNorm(c.embedDim, eps: c.layerNormEps)
        attn = MultiHeadSelfAttention(
            dim: c.embedDim, heads: c.numHeads,
            qkv: linears.makeLinear(layer: index, role: "qkv", inFeatures: c.embedDim, outFeatures: 3 * c.embedDim, bias: c.qkvBias),
            proj: linears.makeLinear(layer: index, role: "proj", inFeatures: c.embedDim, outFeatures: c.embedDim, bias: true),
            attentionDropout: c.attnDropRate, projectionDropout: c.dropRate, site: site + ".attn")
        norm2 = LayerNorm(c.embedDim, eps: c.layerNormEps)
        mlp = FeedForward(
            fc1: linears.makeLinear(layer: index, role: "fc1", inFeatures: c.embedDim, outFeatures: c.mlpDim, bias: true),
            fc2: linears.makeLinear(layer: index, role: "fc2", inFeatures: c.mlpDim, outFeatures: c.embedDim, bias: true),
            activation: .gelu, dropout: c.dropRate, site: site + ".mlp")
        super.init()
        child("norm1", norm1)
        child("attn", attn)
        child("norm2", norm2)
        child("mlp", mlp)
    }

    /// x `[B, T, D]` → `[B, T, D]`, or only the first `firstTokens` tokens' outputs `[B, n, D]` (their attention
    /// still reads every token): the same values for those tokens, without the work for outputs nobody reads.
    public func callAsFunction(_ x: Tensor, _ context: ForwardContext, firstTokens: Int? = nil) -> Tensor {
        attn.context = context
        mlp.context = context
        var h = attn(norm1(x), firstTokens: firstTokens)
            .dropPath(dropPath, key: context.key(site + ".drop_path1"), firstRow: context.firstSample, training: context.training)
        let x1 = (firstTokens.map { x.slice(axis: 1, 0..<$0) } ?? x) + h
        h = mlp(norm2(x1)).dropPath(dropPath, key: context.key(site + ".drop_path2"), firstRow: context.firstSample, training: context.training)
        return x1 + h
    }
}

extension ViTConfiguration {
    /// Matrix-product FLOPs (2 × multiply-adds) of one training step (forward and backward) on `batch` images, as
    /// `VisionTransformer` computes them: each linear layer's forward, weight gradient and input gradient (the patch
    /// embedding's input, the images, needs none); attention's two forward and four backward products; and in the last
    /// block, whose class token alone reaches the head, the qkv projection of every token but attention, projection and
    /// MLP for the class token only. Dense-equivalent for LORS models: the low-rank factors' own products (B·A, a few
    /// percent) are not counted.
    public func trainingMatrixFLOPs(batch: Int) -> Int {
        let b = batch, t = tokens, d = embedDim, m = mlpDim
        let patchIn = inChannels * patchSize * patchSize
        func linear(rows: Int, _ inputs: Int, _ outputs: Int, inputGradient: Bool = true) -> Int {
            2 * rows * inputs * outputs * (inputGradient ? 3 : 2)
        }
        func block(outputTokens q: Int) -> Int {
            linear(rows: b * t, d, 3 * d) + 3 * 2 * 2 * b * q * t * d
                + linear(rows: b * q, d, d) + linear(rows: b * q, d, m) + linear(rows: b * q, m, d)
        }
        let blocks = depth > 0 ? (depth - 1) * block(outputTokens: t) + block(outputTokens: 1) : 0
        return linear(rows: b * (t - 1), patchIn, d, inputGradient: false) + blocks + linear(rows: b, d, numClasses)
    }
}

/// ViT/DeiT image classifier with a class token (parameter names follow timm).
///
/// `patch_embed.proj` is the patchify convolution (kernel = stride = patch), computed as a
/// reshape + matmul; `pos_embed` `[1, T, D]`, `cls_token` `[1, 1, D]`, `blocks.i.*`, `norm`, `head`.
public final class VisionTransformer: Module {
    public let config: ViTConfiguration
    public let patchWeight: Tensor
    public let patchBias: Tensor
    public let clsToken: Tensor
    public let posEmbed: Tensor
    public let blocks: [TransformerBlock]
    public let norm: LayerNorm
    public let head: Linear
    /// Holder of the blocks (named `blocks`), so names read `blocks.3.attn.qkv.weight`.
    private let blockList = Module()

    public init(_ c: ViTConfiguration, linears: BlockLinearFactory = DenseLinearFactory()) {
        precondition(c.imageSize % c.patchSize == 0, "image size \(c.imageSize) not divisible by patch size \(c.patchSize)")
        config = c
        let patchFan = c.inChannels * c.patchSize * c.patchSize
        patchWeight = Module.newParameter([c.embedDim, c.inChannels, c.patchSize, c.patchSize])
        patchBias = Module.newParameter([c.embedDim])
        clsToken = Module.newParameter([1, 1, c.embedDim])
        posEmbed = Module.newParameter([1, c.tokens, c.embedDim])
        blocks = (0..<c.depth).map { i in
            let rate = c.depth > 1 ? c.dropPathRate * Float(i) / Float(c.depth - 1) : c.dropPathRate
            return TransformerBlock(index: i, config: c, dropPath: rate, linears: linears)
        }
        norm = LayerNorm(c.embedDim, eps: c.layerNormEps)
        head = Linear(c.embedDim, c.numClasses, weightInit: .zeros, biasInit: .zeros)
        super.init()
        let patchEmbed = child("patch_embed", Module())
        let proj = patchEmbed.child("proj", Module())
        proj.register("weight", patchWeight, .kaimingUniform(fanIn: patchFan, a: Float(5).squareRoot()))
        proj.register("bias", patchBias, .uniform(bound: 1 / Float(patchFan).squareRoot()))
        register("cls_token", clsToken, .truncatedNormal(std: 0.02))
        register("pos_embed", posEmbed, .truncatedNormal(std: 0.02))
        if let extra = linears.extraModules { child("lors", extra) }
        child("blocks", blockList)
        for (i, b) in blocks.enumerated() { blockList.child("\(i)", b) }
        child("norm", norm)
        child("head", head)
    }

    /// images `[B, C, H, W]` → logits `[B, classes]`.
    public func callAsFunction(_ images: Tensor, _ context: ForwardContext) -> Tensor {
        let c = config
        let b = images.shape[0], p = c.patchSize, g = c.imageSize / p
        precondition(Array(images.shape.dropFirst()) == [c.inChannels, c.imageSize, c.imageSize],
                     "ViT expects images [B, \(c.inChannels), \(c.imageSize), \(c.imageSize)], got \(images.shape)")
        // Patchify: [B, C, g, p, g, p] → [B, g, g, C, p, p] → [B·g·g, C·p·p], then the conv as a matmul.
        let patches = images.reshaped([b, c.inChannels, g, p, g, p]).permuted([0, 2, 4, 1, 3, 5]).reshaped([b, g * g, c.inChannels * p * p])
        let embedded = patches.matmul(patchWeight.reshaped([c.embedDim, c.inChannels * p * p]), transposeOther: true) + patchBias
        let cls = clsToken.broadcast(to: [b, 1, c.embedDim])
        var x = Tensor.concat([cls, embedded], axis: 1) + posEmbed
        if c.dropRate > 0 { x = x.dropout(c.dropRate, key: context.key("pos_drop"), firstRow: context.firstSample, training: context.training) }
        // Only the class token of the last block reaches the head: that block computes just its output (attention of
        // the class token over all tokens, its projection and MLP); the loss and every gradient are unchanged, and
        // the last block costs about a quarter of the others.
        for (i, block) in blocks.enumerated() { x = block(x, context, firstTokens: i == blocks.count - 1 ? 1 : nil) }
        let clsOut = norm((blocks.isEmpty ? x.slice(axis: 1, 0..<1) : x).reshaped([b, c.embedDim]))
        return head(clsOut)
    }
}
