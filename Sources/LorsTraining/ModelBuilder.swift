import LorsConfig
import LorsModels
import LorsNN

/// Maps a validated config to model settings and builds models. One place per model family.
public enum ModelBuilder {
    /// ViT settings from `model.vit.*`.
    public static func vitConfiguration(_ c: Config) -> ViTConfiguration {
        var v = ViTConfiguration()
        v.imageSize = c.int("model.vit.image_size")
        v.inChannels = c.int("model.vit.in_channels")
        v.patchSize = c.int("model.vit.patch_size")
        v.numClasses = c.int("model.vit.num_classes")
        v.embedDim = c.int("model.vit.embed_dim")
        v.depth = c.int("model.vit.depth")
        v.numHeads = c.int("model.vit.num_heads")
        v.mlpRatio = c.double("model.vit.mlp_ratio")
        v.qkvBias = c.bool("model.vit.qkv_bias")
        v.dropRate = Float(c.double("model.vit.drop_rate"))
        v.attnDropRate = Float(c.double("model.vit.attn_drop_rate"))
        v.dropPathRate = Float(c.double("model.vit.drop_path_rate"))
        v.layerNormEps = Float(c.double("model.vit.layer_norm_eps"))
        return v
    }

    /// LORST settings from `model.lors.*`, or nil when `model.lors.enabled` is false.
    public static func lorsViTConfiguration(_ c: Config) -> LORSViTConfiguration? {
        guard c.bool("model.lors.enabled") else { return nil }
        var l = LORSViTConfiguration()
        l.rank = c.int("model.lors.rank")
        l.attentionGroups = c.intList("model.lors.attn_groups")
        l.feedForwardGroups = c.intList("model.lors.ffn_groups")
        l.targets = Set(c.stringList("model.lors.targets"))
        return l
    }

    /// Builds the ViT classifier of `c` (LORS when `model.lors.enabled`) with uninitialised
    /// parameters (call `initializeParameters`).
    public static func vit(_ c: Config) -> VisionTransformer {
        if let lors = lorsViTConfiguration(c) {
            return VisionTransformer(vitConfiguration(c), linears: LORSLinearFactory(lors))
        }
        return VisionTransformer(vitConfiguration(c))
    }
}
