import LorsConfig
import LorsModels
import LorsNN

extension ModelBuilder {
    /// AdaMixer settings from `model.adamixer.*` (LORS from `model.adamixer.lors.*` when enabled).
    public static func adamixerConfiguration(_ s: RunSettings.Model.AdaMixer) -> AdaMixerConfiguration {
        var a = AdaMixerConfiguration()
        a.backboneDepth = s.backbone.depth
        a.frozenStages = s.frozenStages
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

    /// Builds the model named by `model.type` (uninitialised).
    public static func model(_ s: RunSettings.Model) -> Module {
        switch s.type {
        case .adamixer: return adamixer(s.adamixer)
        case .vit: return vit(s)
        }
    }
}
