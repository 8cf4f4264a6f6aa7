import LorsConfig
import LorsModels
import LorsNN

/// Maps typed model settings (`RunSettings.Model`) to model configurations and builds models. One place per model family.
public enum ModelBuilder {
    /// ViT settings from `model.vit.*`.
    public static func vitConfiguration(_ s: RunSettings.Model.ViT) -> ViTConfiguration {
        var v = ViTConfiguration()
        v.imageSize = s.imageSize
        v.inChannels = s.inChannels
        v.patchSize = s.patchSize
        v.numClasses = s.numClasses
        v.embedDim = s.embedDim
        v.depth = s.depth
        v.numHeads = s.numHeads
        v.mlpRatio = s.mlpRatio
        v.qkvBias = s.qkvBias
        v.dropRate = Float(s.dropRate)
        v.attnDropRate = Float(s.attnDropRate)
        v.dropPathRate = Float(s.dropPathRate)
        v.layerNormEps = Float(s.layerNormEps)
        return v
    }

    /// LORST settings from `model.lors.*`, or nil when `model.lors.enabled` is false.
    public static func lorsViTConfiguration(_ s: RunSettings.Model.LORS) -> LORSViTConfiguration? {
        guard s.enabled else { return nil }
        var l = LORSViTConfiguration()
        l.rank = s.rank
        l.attentionGroups = s.attnGroups
        l.feedForwardGroups = s.ffnGroups
        l.targets = Set(s.targets.map(\.rawValue))
        return l
    }

    /// Builds the ViT classifier of `s` (LORS when `model.lors.enabled`) with uninitialised
    /// parameters (call `initializeParameters`).
    public static func vit(_ s: RunSettings.Model) -> VisionTransformer {
        if let lors = lorsViTConfiguration(s.lors) {
            return VisionTransformer(vitConfiguration(s.vit), linears: LORSLinearFactory(lors))
        }
        return VisionTransformer(vitConfiguration(s.vit))
    }
}
