import LorsNN
import LorsTensor

/// AdaMixer's query generator (`query.init_proposal_bboxes.weight [N, 4]`, cx cy w h relative to the image,
/// initialised to the whole image (0.5, 0.5, 1, 1); `query.init_content_features.weight [N, C]`, N(0, 1)).
///
/// The boxes are detached (never learned, still counted); the content passes through LayerNorm without affine.
public final class QueryGenerator: Module {
    public let proposalBoxes: Tensor
    public let contentFeatures: Tensor
    public let numQueries: Int, contentDim: Int

    public init(numQueries: Int, contentDim: Int) {
        self.numQueries = numQueries
        self.contentDim = contentDim
        proposalBoxes = Module.newParameter([numQueries, 4])
        contentFeatures = Module.newParameter([numQueries, contentDim])
        super.init()
        child("init_proposal_bboxes", Module()).register(
            "weight", proposalBoxes, .custom { count, _ in (0..<count).map { $0 % 4 < 2 ? 0.5 : 1 } })
        child("init_content_features", Module()).register("weight", contentFeatures, .normal(std: 1))
    }

    /// Initial queries for images of `imageSizes` (height, width): boxes `[B, N, 4]` as `(x, y, z, r)` in pixels
    /// (constant) and content `[B, N, C]`.
    public func callAsFunction(imageSizes: [(height: Int, width: Int)]) -> (xyzr: Tensor, content: Tensor) {
        let rel = proposalBoxes.toArray()
        var boxes: [Float] = []
        for size in imageSizes {
            let (w, h) = (Float(size.width), Float(size.height))
            for q in 0..<numQueries {
                let (cx, cy, bw, bh) = (rel[q * 4], rel[q * 4 + 1], rel[q * 4 + 2], rel[q * 4 + 3])
                boxes += BoxGeometry.encode(x1: (cx - 0.5 * bw) * w, y1: (cy - 0.5 * bh) * h,
                                            x2: (cx + 0.5 * bw) * w, y2: (cy + 0.5 * bh) * h)
            }
        }
        let b = imageSizes.count
        let content = contentFeatures.reshaped([1, numQueries, contentDim]).broadcast(to: [b, numQueries, contentDim])
            .layerNorm(lastDims: 1, weight: nil, bias: nil)
        return (Tensor(boxes, shape: [b, numQueries, 4]), content)
    }
}

/// The AdaMixer decoder: `stages.i` and, for LORS, the shared `mixing` (`FactorizedAdaptiveMixing`).
/// Boxes are detached between stages; the content is not.
public final class AdaMixerDecoder: Module {
    public let config: AdaMixerConfiguration
    public let stages: [AdaMixerDecoderStage]
    /// The LORS mixing module shared by all stages (nil for vanilla).
    public let lorsMixing: FactorizedAdaptiveMixing?

    public init(_ c: AdaMixerConfiguration) {
        config = c
        if let lors = c.lors {
            precondition(lors.lorsaGroups.count == c.numStages && lors.lorstGroups.count == c.numStages,
                         "AdaMixer LORS: \(lors.lorsaGroups.count) LORSA and \(lors.lorstGroups.count) LORST group counts for \(c.numStages) stages")
            lorsMixing = FactorizedAdaptiveMixing(contentDim: c.contentDim, groups: c.samplingGroups, inPoints: c.inPoints,
                                                  outPoints: c.outPoints, settings: lors)
        } else {
            lorsMixing = nil
        }
        let shared = lorsMixing
        stages = (0..<c.numStages).map { AdaMixerDecoderStage(index: $0, config: c, sharedMixing: shared) }
        super.init()
        let list = child("stages", Module())
        for (i, s) in stages.enumerated() { list.child("\(i)", s) }
        if let lorsMixing { child("mixing", lorsMixing) }
    }

    /// Runs the stages: `features` per level `[B, C, H_l, W_l]`, initial `xyzr [B, N, 4]` and `content [B, N, C]`
    /// → one output per stage.
    public func callAsFunction(_ features: [Tensor], xyzr: Tensor, content: Tensor) -> [AdaMixerStageOutput] {
        var boxes = xyzr.detached(), q = content
        var outputs: [AdaMixerStageOutput] = []
        for stage in stages {
            let out = stage(features, xyzr: boxes, content: q)
            outputs.append(out)
            boxes = out.boxes.detached()
            q = out.content
        }
        return outputs
    }
}

/// The AdaMixer detector: `backbone` (ResNet), `neck` (channel mapper), `query` (query generator), `decoder`.
public final class AdaMixerDetector: Module {
    public let config: AdaMixerConfiguration
    public let backbone: ResNet
    public let neck: ChannelMapper
    public let query: QueryGenerator
    public let decoder: AdaMixerDecoder

    public init(_ c: AdaMixerConfiguration) {
        config = c
        backbone = ResNet(depth: c.backboneDepth, width: c.backboneWidth, norm: c.backboneNorm, frozenStages: c.frozenStages)
        neck = ChannelMapper(inChannels: backbone.outChannels, outChannels: c.neckChannels, groups: c.neckGroups)
        query = QueryGenerator(numQueries: c.numQueries, contentDim: c.contentDim)
        decoder = AdaMixerDecoder(c)
        super.init()
        child("backbone", backbone)
        child("neck", neck)
        child("query", query)
        child("decoder", decoder)
    }

    /// images `[B, 3, H, W]` (`imageSizes` defaults to the full input size for every image) → one output per stage.
    public func callAsFunction(_ images: Tensor, imageSizes: [(height: Int, width: Int)]? = nil) -> [AdaMixerStageOutput] {
        let sizes = imageSizes ?? Array(repeating: (images.shape[2], images.shape[3]), count: images.shape[0])
        let features = neck(backbone(images))
        let (xyzr, content) = query(imageSizes: sizes)
        return decoder(features, xyzr: xyzr, content: content)
    }
}
