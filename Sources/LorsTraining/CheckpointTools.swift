import Foundation
import LorsCheckpoint
import LorsConfig
import LorsData
import LorsDistributed
import LorsModels
import LorsNN
import LorsTensor

/// The model side of `lors eval` and `lors export`: building the configured model, loading a checkpoint into it,
/// evaluating it, and listing its dense (PyTorch-named) weights with LORST layers merged.
public enum CheckpointTools {
    /// The config stored in a checkpoint (`/meta` attribute `config`), validated by the current schema.
    public static func storedConfig(_ reader: CheckpointReader) throws -> Config {
        try ConfigLoader(schema: .lors, acceptingRetiredKeys: true).load(yaml: reader.metadata.config, source: "\(reader.path):/meta/config")
    }

    /// The ViT of `settings` (LORS when `model.lors.enabled`) with the checkpoint's `/model` tensors loaded (strict:
    /// every parameter present at its shape, no extra tensors, checksums verified): what `lors export --merge-lors`
    /// and `--reference-logits` rebuild. Another `model.type` is an error naming `operation`.
    public static func loadViT(_ settings: RunSettings.Model, from reader: CheckpointReader,
                               for operation: String = "a dense ViT export") throws -> VisionTransformer {
        guard settings.type == .vit else {
            throw TrainingError.viTOnly(operation: operation, model: settings.type.rawValue)
        }
        let model = ModelBuilder.vit(settings)
        assignDottedParameterNames(model) // not initialised, so not named yet
        try reader.loadModel(into: model)
        return model
    }

    /// Dense weights of `model` under PyTorch (timm) state-dict names. With `mergeLORS` every LORST layer
    /// (`blocks.i.attn.qkv`, ...) becomes `<layer>.weight = W_sh + B·A` and `<layer>.bias` (its `merged()`), and the
    /// shared `lors.*` tensors are dropped; without it the parameters are listed as they are.
    public static func denseTensors(_ model: VisionTransformer, mergeLORS: Bool) -> [(name: String, tensor: Tensor)] {
        guard mergeLORS else { return model.namedParameters().map { ($0.0, $0.1) } }
        var layerOf: [ObjectIdentifier: (prefix: String, layer: LORSTLayer)] = [:]
        var sharedTensors = Set<ObjectIdentifier>()
        for (i, block) in model.blocks.enumerated() {
            let linears: [(String, Module)] = [("attn.qkv", block.attn.qkv), ("attn.proj", block.attn.proj),
                                               ("mlp.fc1", block.mlp.fc1), ("mlp.fc2", block.mlp.fc2)]
            for (role, module) in linears {
                guard let layer = module as? LORSTLayer else { continue }
                let entry = (prefix: "blocks.\(i).\(role)", layer: layer)
                for tensor in [layer.A, layer.B, layer.bias].compactMap({ $0 }) { layerOf[ObjectIdentifier(tensor)] = entry }
                sharedTensors.insert(ObjectIdentifier(layer.shared.weight))
            }
        }
        var out: [(name: String, tensor: Tensor)] = []
        var emitted = Set<String>()
        for (name, tensor) in model.namedParameters() {
            if let (prefix, layer) = layerOf[ObjectIdentifier(tensor)] {
                guard emitted.insert(prefix).inserted else { continue }
                let (weight, bias) = layer.merged()
                out.append((prefix + ".weight", weight))
                if let bias { out.append((prefix + ".bias", bias)) }
            } else if !sharedTensors.contains(ObjectIdentifier(tensor)) {
                out.append((name, tensor))
            }
        }
        return out
    }

    /// The ViT's shape settings as export metadata (what a dense PyTorch ViT needs to be rebuilt).
    public static func vitMetadata(_ vit: RunSettings.Model.ViT) -> [String: String] {
        var out: [String: String] = ["format": "pt", "model": "vit"]
        let sizes = [("image_size", vit.imageSize), ("in_channels", vit.inChannels), ("patch_size", vit.patchSize),
                     ("num_classes", vit.numClasses), ("embed_dim", vit.embedDim), ("depth", vit.depth), ("num_heads", vit.numHeads)]
        for (name, value) in sizes { out[name] = String(value) }
        out["mlp_ratio"] = String(vit.mlpRatio)
        out["layer_norm_eps"] = String(vit.layerNormEps)
        out["qkv_bias"] = String(vit.qkvBias)
        return out
    }

    /// A fixed input `[count, C, H, W]` (uniform in [-1, 1) from a counter-based key) and our logits for it in inference
    /// mode: the reference a foreign implementation of the exported weights must reproduce.
    public static func referenceLogits(_ model: VisionTransformer, count: Int = 2, seed: UInt64 = 1234) -> (input: Tensor, logits: Tensor) {
        let c = model.config
        let shape = [count, c.inChannels, c.imageSize, c.imageSize]
        let input = Tensor(RandomKey(seed: seed, purpose: "export.reference.input").uniforms(shape.reduce(1, *), low: -1, high: 1), shape: shape)
        let logits = withoutGradients { model(input, .inference).clone() }
        return (input, logits)
    }

    /// The metrics of the checkpoint `reader` holds on the test set of `run` (each rank its share, combined over
    /// `communicator`): the model of `run` (which must match the checkpoint's `/model` tensors exactly) evaluated by
    /// the task the trainer runs, through the same `Evaluation.run`. A detector writes its COCO results under
    /// `workDirectory/eval` (default: the checkpoint's work directory, the parent of its `checkpoints/` directory).
    /// Collective.
    public static func evaluate(checkpoint reader: CheckpointReader, settings run: RunSettings,
                                communicator: any Communicator = LocalCommunicator(), workDirectory: String? = nil) throws -> Metrics {
        let work = workDirectory ?? ((reader.path as NSString).deletingLastPathComponent as NSString).deletingLastPathComponent
        let task = try TrainingSetup.evaluationTask(run, communicator: communicator, workDirectory: work)
        try reader.loadModel(into: task.model)
        return try Evaluation.run(task, communicator: communicator, batchSize: run.eval.testBatchSize,
                                  step: reader.metadata.step).metrics
    }
}
