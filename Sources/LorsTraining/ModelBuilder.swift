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

    /// Builds the ViT classifier of `c` with uninitialised parameters (call `initializeParameters`).
    public static func vit(_ c: Config) -> VisionTransformer {
        VisionTransformer(vitConfiguration(c))
    }
}
