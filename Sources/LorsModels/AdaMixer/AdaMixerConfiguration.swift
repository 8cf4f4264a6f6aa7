/// Shape settings of the AdaMixer detector (defaults: R-50 1x COCO, docs/lors.md "The AdaMixer decoder").
public struct AdaMixerConfiguration: Sendable, Equatable {
    /// ResNet depth: 18, 34, 50 or 101.
    public var backboneDepth = 50
    /// ResNet base width (stem channels, first stage's planes); 64 is torchvision's layout.
    public var backboneWidth = 64
    /// Normalisation of the backbone's convs.
    public var backboneNorm = ResNetNorm.frozenBatchNorm
    /// Backbone stages with frozen weights (mmdet's `frozen_stages`): -1 = none, 0 = the stem, k = stem + layer1…layerk.
    public var frozenStages = 1
    /// Weights file with torchvision ResNet names for the backbone (nil = none). The detector does not read it:
    /// the model builder loads it after initialising the parameters.
    public var backbonePretrained: String?
    /// Object queries N.
    public var numQueries = 100
    /// Decoder stages.
    public var numStages = 6
    /// Query content width C (a multiple of 4 for the positional code, of `numHeads` and of `samplingGroups`).
    public var contentDim = 256
    /// FFN hidden width.
    public var feedforwardChannels = 2048
    /// Self-attention heads.
    public var numHeads = 8
    /// Sampling groups G (each reads `contentDim / G` channels).
    public var samplingGroups = 4
    /// Sampling points per group P_in.
    public var inPoints = 32
    /// Mixer output points P_out.
    public var outPoints = 128
    /// Object classes (sigmoid classifier).
    public var numClasses = 80
    /// Strides of the four feature levels (C2–C5).
    public var featureStrides = [4, 8, 16, 32]
    /// Neck output channels (must equal `contentDim`: every level is sampled with the content's group split).
    public var neckChannels: Int { contentDim }
    /// GroupNorm groups of the neck.
    public var neckGroups = 32
    /// LORS settings of the decoder's mixing (nil = vanilla AdaMixer).
    public var lors: AdaMixerLORSConfiguration?

    public init() {}

    /// Channels per sampling group C_g.
    public var groupChannels: Int { contentDim / samplingGroups }
    /// Width of the flattened mixer output `G · P_out · C_g`.
    public var mixerOutputWidth: Int { samplingGroups * outPoints * groupChannels }
}

/// LORS settings of the AdaMixer decoder (docs/lors.md, "The AdaMixer decoder").
public struct AdaMixerLORSConfiguration: Sendable, Equatable {
    /// How the shared ACM/ASM generator is initialised.
    public enum SharedInit: String, Sendable, CaseIterable {
        /// Official code: weight zero, bias PyTorch default U(±1/√C).
        case official
        /// Paper: weight Kaiming-uniform (a = 0, fan_in C), bias U(±1/√C) (`LORSAInitialization.paper`).
        case paper
    }

    /// LORSA rank r of one group (M and S).
    public var lorsaRank = 16
    /// LORSA groups K_i per stage.
    public var lorsaGroups = [1, 1, 2, 2, 3, 3]
    /// LORST rank r of W_o.
    public var lorstRank = 8
    /// LORST groups per stage (a stage's private W_o factors have rank `groups × lorstRank`).
    public var lorstGroups = [1, 1, 1, 1, 1, 1]
    /// Shared generator initialisation.
    public var sharedInit = SharedInit.official

    public init() {}
}

public extension AdaMixerConfiguration {
    /// Vanilla R-50 1x COCO (G=4, P_in=32).
    static var r50: AdaMixerConfiguration { AdaMixerConfiguration() }

    /// LORS R-50 1x COCO: G=2, P_in=64, LORSA r=16 K=[1,1,2,2,3,3], LORST r=8 K=1.
    static var r50LORS: AdaMixerConfiguration {
        var c = AdaMixerConfiguration()
        c.samplingGroups = 2
        c.inPoints = 64
        c.lors = AdaMixerLORSConfiguration()
        return c
    }
}
