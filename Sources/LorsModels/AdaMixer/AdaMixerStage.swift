import Foundation
import LorsNN
import LorsTensor

/// What one decoder stage returns.
public struct AdaMixerStageOutput {
    /// Class logits `[B, N, classes]` (sigmoid classifier).
    public var classLogits: Tensor
    /// Refined boxes `(x, y, z, r)` `[B, N, 4]`, carrying the gradient of the regression head.
    public var boxes: Tensor
    /// Updated query content `[B, N, C]`.
    public var content: Tensor

    public init(classLogits: Tensor, boxes: Tensor, content: Tensor) {
        self.classLogits = classLogits
        self.boxes = boxes
        self.content = content
    }
}

/// One AdaMixer decoder stage (docs/lors.md): position-aware self-attention with the IoF bias, adaptive 3-D
/// sampling, adaptive mixing (its own `AdaptiveMixing`, or the decoder's shared `FactorizedAdaptiveMixing`),
/// FFN, classification and regression heads, box refinement.
///
/// Names: `attention.qkv` (PyTorch `in_proj`, Xavier over [3C, C], bias 0), `attention.proj` (`out_proj`),
/// `attention_norm`, `iof_tau [heads]` U(0, 4), `sampling_offset` (zero weight; bias per point (x, y, z): an
/// √P×√P grid or U(±0.5) for xy, −1 for z), `mixing.*` (vanilla only), `ffn.fc1`, `ffn.fc2`, `ffn_norm`,
/// `cls_fc`, `cls_norm`, `fc_cls` (bias −log 99), `reg_fc`, `reg_norm`, `fc_reg` (zero). Other Linears:
/// Xavier weight, bias U(±1/√in).
public final class AdaMixerDecoderStage: Module {
    public let index: Int
    public let config: AdaMixerConfiguration
    public let attention: MultiHeadSelfAttention
    public let attentionNorm: LayerNorm
    public let iofTau: Tensor
    public let samplingOffset: Linear
    /// The mixing step (owned here for vanilla; the decoder's shared module for LORS).
    public let mixing: AdaMixerMixing
    public let ffn: FeedForward
    public let ffnNorm: LayerNorm
    public let clsFC: Linear, clsNorm: LayerNorm, fcCls: Linear
    public let regFC: Linear, regNorm: LayerNorm, fcReg: Linear

    /// `sharedMixing` nil builds the vanilla `AdaptiveMixing` as child `mixing`.
    public init(index: Int, config c: AdaMixerConfiguration, sharedMixing: AdaMixerMixing? = nil) {
        precondition(c.contentDim % 4 == 0 && c.contentDim % c.numHeads == 0 && c.contentDim % c.samplingGroups == 0,
                     "AdaMixer content_dim \(c.contentDim) must divide by 4, num_heads \(c.numHeads) and sampling_groups \(c.samplingGroups)")
        self.index = index
        config = c
        let d = c.contentDim
        func xavier(_ i: Int, _ o: Int) -> Linear { Linear(i, o, weightInit: .xavierUniform(fanIn: i, fanOut: o)) }
        attention = MultiHeadSelfAttention(
            dim: d, heads: c.numHeads,
            qkv: Linear(d, 3 * d, weightInit: .xavierUniform(fanIn: d, fanOut: 3 * d), biasInit: .zeros),
            proj: xavier(d, d), site: "decoder.stages.\(index).attention")
        attentionNorm = LayerNorm(d)
        iofTau = Module.newParameter([c.numHeads])
        let (groups, points) = (c.samplingGroups, c.inPoints)
        samplingOffset = Linear(d, groups * points * 3, weightInit: .zeros,
                                biasInit: .custom { _, key in AdaMixerDecoderStage.offsetBias(groups: groups, points: points, key: key) })
        let ownMixing = sharedMixing == nil
            ? AdaptiveMixing(contentDim: d, groups: c.samplingGroups, inPoints: c.inPoints, outPoints: c.outPoints) : nil
        mixing = sharedMixing ?? ownMixing!
        ffn = FeedForward(fc1: xavier(d, c.feedforwardChannels), fc2: xavier(c.feedforwardChannels, d), activation: .relu,
                          site: "decoder.stages.\(index).ffn")
        ffnNorm = LayerNorm(d)
        clsFC = xavier(d, d)
        clsNorm = LayerNorm(d)
        fcCls = Linear(d, c.numClasses, weightInit: .xavierUniform(fanIn: d, fanOut: c.numClasses),
                       biasInit: .constant(-Float(Foundation.log((1 - 0.01) / 0.01))))
        regFC = xavier(d, d)
        regNorm = LayerNorm(d)
        fcReg = Linear(d, 4, weightInit: .zeros, biasInit: .zeros)
        super.init()
        child("attention", attention)
        child("attention_norm", attentionNorm)
        register("iof_tau", iofTau, .uniformRange(0, 4))
        child("sampling_offset", samplingOffset)
        if let ownMixing { child("mixing", ownMixing) }
        child("ffn", ffn)
        child("ffn_norm", ffnNorm)
        child("cls_fc", clsFC)
        child("cls_norm", clsNorm)
        child("fc_cls", fcCls)
        child("reg_fc", regFC)
        child("reg_norm", regNorm)
        child("fc_reg", fcReg)
    }

    /// Initial sampling-offset bias `[G, P, 3]`: for a square P a regular √P×√P grid of cell centres in
    /// [−0.5, 0.5] (first component the row coordinate, as the official code), else U(±0.5); z offset −1.
    static func offsetBias(groups: Int, points: Int, key: RandomKey) -> [Float] {
        var out = key.uniforms(groups * points * 3, low: -0.5, high: 0.5)
        let side = Int(Double(points).squareRoot())
        let square = side * side == points
        let centres = (0..<side).map { -0.5 + 0.5 / Float(side) + Float($0) / Float(side) }
        for g in 0..<groups {
            for p in 0..<points {
                let base = (g * points + p) * 3
                if square {
                    out[base] = centres[p / side]
                    out[base + 1] = centres[p % side]
                }
                out[base + 2] = -1
            }
        }
        return out
    }

    /// Position-aware self-attention: `LN((q + pe) + MHA(q + pe, bias = log(IoF + 1e-7) · τ_h))`.
    /// `content [B, N, C]`, `xyzr [B, N, 4]` (constant) → `[B, N, C]`.
    public func selfAttention(_ content: Tensor, xyzr: Tensor) -> Tensor {
        let x = content + BoxGeometry.positionalEncoding(xyzr, features: config.contentDim / 4)
        let bias = BoxGeometry.logIoF(xyzr) * iofTau.reshaped([1, config.numHeads, 1, 1])  // [B, heads, N, N]
        return attentionNorm(x + attention(x, bias: bias))
    }

    /// Adaptive 3-D sampling: `features` (one `[B, C, H_l, W_l]` per level), `content [B, N, C]`,
    /// `xyzr [B, N, 4]` → `[B, N, G, P_in, C_g]`.
    public func sample(_ features: [Tensor], content: Tensor, xyzr: Tensor) -> Tensor {
        let c = config
        let (b, n, g, p, cg) = (content.shape[0], content.shape[1], c.samplingGroups, c.inPoints, c.groupChannels)
        precondition(features.count == c.featureStrides.count, "AdaMixer: \(features.count) feature levels for strides \(c.featureStrides)")
        let offsets = samplingOffset(content).reshaped([b, n, g * p, 3])
        // Per-query box constants [B, N, 1, 1].
        let boxes = xyzr.toArray()
        var cx = [Float](), cy = [Float](), w = [Float](), h = [Float](), z = [Float]()
        for q in 0..<(b * n) {
            let box = boxes[q * 4..<q * 4 + 4]
            let size = BoxGeometry.size(box)
            cx.append(box[q * 4]); cy.append(box[q * 4 + 1]); z.append(box[q * 4 + 2])
            w.append(size.w); h.append(size.h)
        }
        func column(_ v: [Float]) -> Tensor { Tensor(v, shape: [b, n, 1, 1]) }
        let sx = column(cx) + offsets.slice(axis: 3, 0..<1) * column(w)  // [B, N, G·P, 1]
        let sy = column(cy) + offsets.slice(axis: 3, 1..<2) * column(h)
        let sz = column(z) + offsets.slice(axis: 3, 2..<3)
        let logits = Tensor.concat(c.featureStrides.map { stride in
            (sz - Float(log2(Double(stride)))).square() * (-1 / Float(2))
        }, axis: 3)
        let levelWeights = logits.softmax(axis: -1)  // [B, N, G·P, L]
        var out: Tensor?
        for (level, (value, stride)) in zip(features, c.featureStrides).enumerated() {
            precondition(value.shape[0] == b && value.shape[1] == c.contentDim,
                         "AdaMixer: level \(level) features \(value.shape), expected [\(b), \(c.contentDim), H, W]")
            let (fh, fw) = (value.shape[2], value.shape[3])
            let gx = sx * (2 / Float(fw * stride)) - 1, gy = sy * (2 / Float(fh * stride)) - 1
            let grid = Tensor.concat([gx, gy], axis: 3).reshaped([b, n, g, p, 2]).permuted([0, 2, 1, 3, 4]).reshaped([b * g, n, p, 2])
            let sampled = value.reshaped([b * g, cg, fh, fw]).gridSample(grid)  // [B·G, C_g, N, P]
            let weight = levelWeights.slice(axis: 3, level..<(level + 1)).reshaped([b, n, g, p]).permuted([0, 2, 1, 3])
                .reshaped([b * g, 1, n, p])
            let term = sampled * weight
            out = out.map { $0 + term } ?? term
        }
        return out!.reshaped([b, g, cg, n, p]).permuted([0, 3, 1, 4, 2])
    }

    /// One stage: `features` per level, `xyzr [B, N, 4]` (treated as a constant), `content [B, N, C]`.
    public func callAsFunction(_ features: [Tensor], xyzr: Tensor, content: Tensor) -> AdaMixerStageOutput {
        let (b, n) = (content.shape[0], content.shape[1])
        var q = selfAttention(content, xyzr: xyzr)
        q = mixing.mix(stage: index, sampled: sample(features, content: q, xyzr: xyzr), query: q)
        q = ffnNorm(q + ffn(q))
        let logits = fcCls(clsNorm(clsFC(q)).relu()).reshaped([b, n, config.numClasses])
        let delta = fcReg(regNorm(regFC(q)).relu()).reshaped([b, n, 4])
        return AdaMixerStageOutput(classLogits: logits, boxes: BoxGeometry.refine(xyzr, delta: delta), content: q)
    }
}
