import LorsCheckpoint
import LorsConfig
import LorsModels
import LorsNN

extension ModelBuilder {
    /// AdaMixer settings from `model.adamixer.*` (LORS from `model.adamixer.lors.*` when enabled).
    public static func adamixerConfiguration(_ s: RunSettings.Model.AdaMixer) -> AdaMixerConfiguration {
        var a = AdaMixerConfiguration()
        a.backboneDepth = s.backbone.depth
        a.backboneWidth = s.backbone.width
        switch s.backbone.norm {
        case .frozenBN: a.backboneNorm = .frozenBatchNorm
        case .groupNorm: a.backboneNorm = .groupNorm(groups: s.backbone.normGroups)
        }
        a.frozenStages = s.backbone.frozenStages
        a.backbonePretrained = s.backbone.pretrained.isEmpty ? nil : s.backbone.pretrained
        a.numQueries = s.numQueries
        a.numStages = s.numStages
        a.contentDim = s.contentDim
        a.feedforwardChannels = s.feedforwardChannels
        a.numHeads = s.numHeads
        a.samplingGroups = s.samplingGroups
        a.inPoints = s.inPoints
        a.outPoints = s.outPoints
        a.numClasses = s.numClasses
        if s.lors.enabled {
            var l = AdaMixerLORSConfiguration()
            l.lorsaRank = s.lors.lorsaRank
            l.lorsaGroups = s.lors.lorsaGroups
            l.lorstRank = s.lors.lorstRank
            l.lorstGroups = s.lors.lorstGroups
            switch s.lors.sharedInit {
            case .official: l.sharedInit = .official
            case .paper: l.sharedInit = .paper
            }
            a.lors = l
        }
        return a
    }

    /// Builds the AdaMixer detector of `s` with uninitialised parameters (call `initializeParameters`).
    public static func adamixer(_ s: RunSettings.Model.AdaMixer) -> AdaMixerDetector {
        AdaMixerDetector(adamixerConfiguration(s))
    }

    /// Builds the AdaMixer detector of `s`, initialises its parameters from `seed`, then loads the backbone weights of
    /// `model.adamixer.backbone.pretrained` over the random init (a file read: every rank gets the same weights).
    /// Throws `PretrainedWeightsError` naming the file and the parameter when the file does not fit the backbone.
    public static func initializedAdaMixer(_ s: RunSettings.Model.AdaMixer, seed: UInt64) throws -> AdaMixerDetector {
        let detector = adamixer(s)
        detector.initializeParameters(seed: seed)
        if let path = detector.config.backbonePretrained {
            try loadPretrainedBackbone(detector.backbone, from: path)
        }
        return detector
    }

    /// Loads torchvision ResNet weights (`conv1.weight`, `bn1.running_mean`, `layer1.0.downsample.0.weight`, ...) from
    /// the safetensors or HDF5 file at `path` into `backbone`; `fc.*` and `*.num_batches_tracked` are skipped. Every
    /// parameter and buffer must be in the file with its shape, and the file may hold nothing else.
    public static func loadPretrainedBackbone(_ backbone: ResNet, from path: String) throws {
        try PretrainedWeights.load(into: backbone, from: path, skipping: PretrainedWeights.torchvisionClassifierAndCounters)
    }

    /// Builds the model named by `model.type` (uninitialised).
    public static func model(_ s: RunSettings.Model) -> Module {
        switch s.type {
        case .adamixer: return adamixer(s.adamixer)
        case .vit: return vit(s)
        }
    }
}
