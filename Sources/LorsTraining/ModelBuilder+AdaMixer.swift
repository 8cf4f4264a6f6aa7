import LorsConfig
import LorsModels
import LorsNN

extension ModelBuilder {
    /// AdaMixer settings from `model.adamixer.*` (LORS from `model.adamixer.lors.*` when enabled).
    public static func adamixerConfiguration(_ c: Config) -> AdaMixerConfiguration {
        var a = AdaMixerConfiguration()
        a.backboneDepth = c.string("model.adamixer.backbone") == "resnet101" ? 101 : 50
        a.frozenStages = c.int("model.adamixer.frozen_stages")
        a.numQueries = c.int("model.adamixer.num_queries")
        a.numStages = c.int("model.adamixer.num_stages")
        a.contentDim = c.int("model.adamixer.content_dim")
        a.feedforwardChannels = c.int("model.adamixer.feedforward_channels")
        a.numHeads = c.int("model.adamixer.num_heads")
        a.samplingGroups = c.int("model.adamixer.sampling_groups")
        a.inPoints = c.int("model.adamixer.in_points")
        a.outPoints = c.int("model.adamixer.out_points")
        a.numClasses = c.int("model.adamixer.num_classes")
        if c.bool("model.adamixer.lors.enabled") {
            var l = AdaMixerLORSConfiguration()
            l.lorsaRank = c.int("model.adamixer.lors.lorsa_rank")
            l.lorsaGroups = c.intList("model.adamixer.lors.lorsa_groups")
            l.lorstRank = c.int("model.adamixer.lors.lorst_rank")
            l.lorstGroups = c.intList("model.adamixer.lors.lorst_groups")
            l.sharedInit = AdaMixerLORSConfiguration.SharedInit(rawValue: c.string("model.adamixer.lors.shared_init")) ?? .official
            a.lors = l
        }
        return a
    }

    /// Builds the AdaMixer detector of `c` with uninitialised parameters (call `initializeParameters`).
    public static func adamixer(_ c: Config) -> AdaMixerDetector {
        AdaMixerDetector(adamixerConfiguration(c))
    }

    /// Builds the model named by `model.type` (uninitialised).
    public static func model(_ c: Config) -> Module {
        switch c.string("model.type") {
        case "adamixer": return adamixer(c)
        default: return vit(c)
        }
    }
}
