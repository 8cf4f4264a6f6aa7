import LorsModels
import LorsNN
import LorsOptim
import LorsTensor
@testable import LorsDistributed

/// A real model for the data-parallel checks: how to build it and its per-rank loss.
struct ModelCase {
    let name: String
    /// Builds the model with uninitialised parameters, every parameter named by its dotted path.
    let makeModel: () -> Module
    /// Initialises the parameters from `seed` (default: the modules' initialisers).
    var initialize: (Module, UInt64) -> Void = { $0.initializeParameters(seed: $1) }
    /// The rank's loss: sum over `samples` (dataset indices; the first has global position
    /// `firstSample` in the step's batch) of per-sample losses, divided by `globalBatch`.
    let loss: (_ model: Module, _ samples: [Int], _ firstSample: Int, _ globalBatch: Int) -> Tensor
    static let datasetSize = 48

    /// Samples `[count, n]` of counter-based uniforms, sample s from (seed, purpose, s) only.
    static func perSample(_ samples: [Int], _ n: Int, purpose: String, low: Float = -1, high: Float = 1) -> [Float] {
        samples.flatMap { RandomKey(seed: 11, purpose: purpose, stream: (UInt64($0), 0)).uniforms(n, low: low, high: high) }
    }

    /// A small LORS ViT (8×8×1 images, patch 4, width 16, 3 blocks, LORST on qkv/proj/fc1/fc2 with
    /// shared weights across blocks), cross-entropy on fixed labels.
    static let lorsViT = ModelCase(name: "LORS ViT", makeModel: {
        var v = ViTConfiguration()
        v.imageSize = 8
        v.inChannels = 1
        v.patchSize = 4
        v.numClasses = 4
        v.embedDim = 16
        v.depth = 3
        v.numHeads = 2
        v.mlpRatio = 2
        var l = LORSViTConfiguration()
        l.rank = 2
        l.attentionGroups = [1, 1, 2]
        l.feedForwardGroups = [2, 1, 1]
        let model = VisionTransformer(v, linears: LORSLinearFactory(l))
        for (name, t) in model.namedParameters() { t.name = name }
        return model
    }, initialize: { model, seed in
        model.initializeParameters(seed: seed)
        // The ViT's classifier starts at zero (timm), which would leave every other gradient zero in the
        // first step; a random head makes the first reduced gradients of every tensor meaningful.
        let head = model.namedParameters().first { $0.0 == "head.weight" }!.1
        head.assign(Tensor(RandomKey(seed: seed, purpose: "dp.vit.head").uniforms(head.count, low: -0.5, high: 0.5), shape: head.shape))
    }, loss: { model, samples, first, global in
        let vit = model as! VisionTransformer
        let images = Tensor(perSample(samples, 64, purpose: "dp.vit.images"), shape: [samples.count, 1, 8, 8])
        let logits = vit(images, ForwardContext(training: true, seed: 1, step: 0, firstSample: first))
        return Tensor.crossEntropy(logits, targets: samples.map { Int32(($0 * 5 + 2) % 4) }, reduction: .sumDividedBy(Float(global)))
    })

    /// The reduced LORS AdaMixer decoder (content 16, 2 heads, 2 groups × 4 points, 2 stages, 4
    /// queries; LORSA + LORST with the shared mixing module used by both stages), driven by
    /// per-sample random features, boxes and content. Loss: mean squared error of every stage's
    /// (class logits, boxes, content) against fixed per-sample targets, i.e. each sample's
    /// Σ(out − target)² / (queries × 2 × 23), summed over the rank's samples, divided by the global batch.
    static let lorsAdaMixer = ModelCase(name: "LORS AdaMixer decoder", makeModel: {
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
        var l = AdaMixerLORSConfiguration()
        l.lorsaRank = 2
        l.lorsaGroups = [1, 2]
        l.lorstRank = 2
        l.lorstGroups = [1, 1]
        l.sharedInit = .paper  // non-zero shared weights, so their gradients matter from step 1
        c.lors = l
        let decoder = AdaMixerDecoder(c)
        for (name, t) in decoder.namedParameters() { t.name = name }
        return decoder
    }, loss: { model, samples, _, global in
        let decoder = model as! AdaMixerDecoder
        let b = samples.count, n = 4, c = 16
        let features = [8, 4, 2, 1].enumerated().map { level, size -> Tensor in
            let values = perSample(samples, c * size * size, purpose: "dp.adamixer.features.\(level)")
            return Tensor(values, shape: [b, c, size, size])
        }
        // Boxes (x, y, log2 size, log2 aspect) inside a 32×32 image.
        let raw = perSample(samples, n * 4, purpose: "dp.adamixer.xyzr", low: 0, high: 1)
        let xyzr = Tensor(raw.enumerated().map { i, u in [8 + 16 * u, 8 + 16 * u, 3 + 2 * u, u - 0.5][i % 4] }, shape: [b, n, 4])
        let content = Tensor(perSample(samples, n * c, purpose: "dp.adamixer.content"), shape: [b, n, c])
        let outputs = decoder([features[0], features[1], features[2], features[3]], xyzr: xyzr, content: content)
        let out = Tensor.concat(outputs.flatMap { [$0.classLogits, $0.boxes, $0.content] }, axis: 2)  // [b, n, 46]
        let width = out.shape[2]
        let target = Tensor(perSample(samples, n * width, purpose: "dp.adamixer.target"), shape: [b, n, width])
        return (out - target).square().sum() * (1 / Float(n * width * global))
    })
}

/// One data-parallel run of `model` (SPMD on every rank of `communicator`): start-up broadcast
/// (ranks initialise differently on purpose), shared weights found by a dry forward, the bucketed
/// reducer, `options.steps` steps of SGD (or AdamW) with optional clipping and ZeRO-1.
func modelTrainRun(_ communicator: Communicator, _ model: ModelCase, _ options: RunOptions = RunOptions()) throws -> RunResult {
    let net = model.makeModel()
    return try dataParallelRun(communicator, model: net, initialize: { model.initialize(net, $0) }, datasetSize: ModelCase.datasetSize,
                               learningRates: (adamw: 0.01, sgd: 0.1), options: options,
                               dryForward: { _ = model.loss(net, [0], 0, 1) }) { micro, first in
        model.loss(net, micro, first, options.globalBatch)
    }
}
