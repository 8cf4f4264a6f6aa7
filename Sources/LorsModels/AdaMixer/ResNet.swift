import LorsNN
import LorsTensor

/// A 2-D convolution layer: `weight [O, C/groups, kh, kw]`, optional `bias [O]` (PyTorch `nn.Conv2d` names).
public final class Conv2dModule: Module {
    public let weight: Tensor
    public let bias: Tensor?
    public let stride: Int
    public let padding: Int

    public init(_ inChannels: Int, _ outChannels: Int, kernel: Int, stride: Int = 1, padding: Int = 0, bias hasBias: Bool = false,
                weightInit: Initializer, biasInit: Initializer = .zeros) {
        self.stride = stride
        self.padding = padding
        weight = Module.newParameter([outChannels, inChannels, kernel, kernel])
        bias = hasBias ? Module.newParameter([outChannels]) : nil
        super.init()
        register("weight", weight, weightInit)
        if let bias { register("bias", bias, biasInit) }
    }

    /// x `[B, C, H, W]` → `[B, O, H', W']`.
    public func callAsFunction(_ x: Tensor) -> Tensor {
        x.conv2d(weight: weight, bias: bias, stride: (stride, stride), padding: (padding, padding))
    }

    /// mmdet/torchvision ResNet conv init: Kaiming normal, fan_out, ReLU gain (std √(2 / (O·kh·kw))).
    static func kaimingFanOut(_ outChannels: Int, kernel: Int) -> Initializer {
        .normal(std: (2 / Float(outChannels * kernel * kernel)).squareRoot())
    }
}

/// BatchNorm in eval mode with frozen statistics (mmdet `norm_eval=True`): `y = (x − μ) / √(σ² + eps) · γ + β`
/// per channel, μ and σ² the running statistics (buffers), γ and β trainable parameters.
public final class FrozenBatchNorm: Module {
    public let weight: Tensor
    public let bias: Tensor
    public let runningMean: Tensor
    public let runningVar: Tensor
    public let eps: Float

    public init(_ channels: Int, eps: Float = 1e-5) {
        self.eps = eps
        weight = Module.newParameter([channels])
        bias = Module.newParameter([channels])
        runningMean = Tensor.zeros([channels])
        runningVar = Tensor.ones([channels])
        super.init()
        register("weight", weight, .ones)
        register("bias", bias, .zeros)
        buffer("running_mean", runningMean)
        buffer("running_var", runningVar)
    }

    /// x `[B, C, H, W]` → same shape.
    public func callAsFunction(_ x: Tensor) -> Tensor {
        let c = weight.count
        // 1 / √(var + ε) as tensor ops (bitwise the host loop's float math), so no forward reads the buffers on the host.
        let invStd = runningVar.detached().adding(eps).sqrt().reverseDiv(1)
        let scale = weight * invStd
        let shift = bias - runningMean * scale
        return x * scale.reshaped([1, c, 1, 1]) + shift.reshaped([1, c, 1, 1])
    }
}

/// GroupNorm over `[B, C, H, W]` with a trainable per-channel affine (`weight` 1, `bias` 0 at init) and no running
/// statistics: the ResNet norm for randomly initialised backbones (PyTorch `nn.GroupNorm` names).
public final class GroupNormLayer: Module {
    public let weight: Tensor
    public let bias: Tensor
    public let groups: Int
    public let eps: Float

    public init(_ channels: Int, groups: Int, eps: Float = 1e-5) {
        precondition(groups > 0 && channels % groups == 0, "GroupNorm: \(channels) channels not divisible into \(groups) groups")
        self.groups = groups
        self.eps = eps
        weight = Module.newParameter([channels])
        bias = Module.newParameter([channels])
        super.init()
        register("weight", weight, .ones)
        register("bias", bias, .zeros)
    }

    /// x `[B, C, H, W]` → same shape.
    public func callAsFunction(_ x: Tensor) -> Tensor {
        x.groupNorm(groups: groups, weight: weight, bias: bias, eps: eps)
    }
}

/// A per-channel normalisation layer of a ResNet (`bn1`, `bn2`, `downsample.1`, ...).
public protocol ChannelNorm: Module {
    /// x `[B, C, H, W]` → same shape.
    func callAsFunction(_ x: Tensor) -> Tensor
}

extension FrozenBatchNorm: ChannelNorm {}
extension GroupNormLayer: ChannelNorm {}

/// The normalisation of a ResNet's convs. Either way the parameters are named `weight` and `bias` under the
/// torchvision names (`bn1`, `layer1.0.bn2`, `layer2.0.downsample.1`, ...).
public enum ResNetNorm: Sendable, Equatable {
    /// Eval-mode BatchNorm with frozen running statistics (mmdetection's setting for pretrained backbones).
    case frozenBatchNorm
    /// GroupNorm with `groups` groups and a trainable affine, no running statistics (for randomly initialised backbones).
    case groupNorm(groups: Int)

    func make(_ channels: Int) -> any ChannelNorm {
        switch self {
        case .frozenBatchNorm: FrozenBatchNorm(channels)
        case .groupNorm(let groups): GroupNormLayer(channels, groups: groups)
        }
    }
}

/// ResNet bottleneck, pytorch style (the stride sits on the 3×3 conv): `relu(bn3(conv3(relu(bn2(conv2(relu(bn1(conv1 x))))))) + down(x))`.
public final class Bottleneck: Module, ResNetBlock {
    public let conv1: Conv2dModule, bn1: any ChannelNorm
    public let conv2: Conv2dModule, bn2: any ChannelNorm
    public let conv3: Conv2dModule, bn3: any ChannelNorm
    public let downsampleConv: Conv2dModule?, downsampleNorm: (any ChannelNorm)?

    public static let expansion = 4

    public init(inChannels: Int, planes: Int, stride: Int, norm: ResNetNorm = .frozenBatchNorm) {
        let out = planes * Bottleneck.expansion
        conv1 = Conv2dModule(inChannels, planes, kernel: 1, weightInit: Conv2dModule.kaimingFanOut(planes, kernel: 1))
        bn1 = norm.make(planes)
        conv2 = Conv2dModule(planes, planes, kernel: 3, stride: stride, padding: 1, weightInit: Conv2dModule.kaimingFanOut(planes, kernel: 3))
        bn2 = norm.make(planes)
        conv3 = Conv2dModule(planes, out, kernel: 1, weightInit: Conv2dModule.kaimingFanOut(out, kernel: 1))
        bn3 = norm.make(out)
        (downsampleConv, downsampleNorm) = residualProjection(inChannels, out, stride: stride, norm: norm)
        super.init()
        child("conv1", conv1); child("bn1", bn1)
        child("conv2", conv2); child("bn2", bn2)
        child("conv3", conv3); child("bn3", bn3)
        registerProjection(downsampleConv, downsampleNorm)
    }

    /// x `[B, C_in, H, W]` → `[B, 4·planes, H/stride, W/stride]`.
    public func callAsFunction(_ x: Tensor) -> Tensor {
        var h = bn1(conv1(x)).relu()
        h = bn2(conv2(h)).relu()
        h = bn3(conv3(h))
        let identity = downsampleConv.map { downsampleNorm!($0(x)) } ?? x
        return (h + identity).relu()
    }
}

/// ResNet basic block (torchvision `BasicBlock`, ResNet-18/34): `relu(bn2(conv2(relu(bn1(conv1 x)))) + down(x))`,
/// both convs 3×3, the stride on `conv1`.
public final class BasicBlock: Module, ResNetBlock {
    public let conv1: Conv2dModule, bn1: any ChannelNorm
    public let conv2: Conv2dModule, bn2: any ChannelNorm
    public let downsampleConv: Conv2dModule?, downsampleNorm: (any ChannelNorm)?

    public static let expansion = 1

    public init(inChannels: Int, planes: Int, stride: Int, norm: ResNetNorm = .frozenBatchNorm) {
        conv1 = Conv2dModule(inChannels, planes, kernel: 3, stride: stride, padding: 1, weightInit: Conv2dModule.kaimingFanOut(planes, kernel: 3))
        bn1 = norm.make(planes)
        conv2 = Conv2dModule(planes, planes, kernel: 3, padding: 1, weightInit: Conv2dModule.kaimingFanOut(planes, kernel: 3))
        bn2 = norm.make(planes)
        (downsampleConv, downsampleNorm) = residualProjection(inChannels, planes, stride: stride, norm: norm)
        super.init()
        child("conv1", conv1); child("bn1", bn1)
        child("conv2", conv2); child("bn2", bn2)
        registerProjection(downsampleConv, downsampleNorm)
    }

    /// x `[B, C_in, H, W]` → `[B, planes, H/stride, W/stride]`.
    public func callAsFunction(_ x: Tensor) -> Tensor {
        var h = bn1(conv1(x)).relu()
        h = bn2(conv2(h))
        let identity = downsampleConv.map { downsampleNorm!($0(x)) } ?? x
        return (h + identity).relu()
    }
}

/// A residual block of a ResNet stage (`BasicBlock` or `Bottleneck`).
public protocol ResNetBlock: Module {
    /// The block's first convolution (`conv1`).
    var conv1: Conv2dModule { get }
    /// x `[B, C_in, H, W]` → `[B, C_out, H/stride, W/stride]`.
    func callAsFunction(_ x: Tensor) -> Tensor
}

/// ResNet backbone (torchvision names: `conv1`, `bn1`, `layer1.0.conv1`, ..., `layerK.i.downsample.0/1`), no classifier.
/// Depth 18/34 use `BasicBlock`, 50/101 `Bottleneck`. Returns C2–C5 at strides 4, 8, 16, 32 with `outChannels`
/// channels: `width·2^k` (BasicBlock) or `4·width·2^k` (Bottleneck), k = 0…3; `width` 64 is torchvision's layout
/// (ResNet-50: 256, 512, 1024, 2048), the stem has `width` channels.
///
/// `frozenStages` follows mmdetection's `frozen_stages`: −1 freezes nothing, 0 the stem (`conv1`, `bn1`), k ≥ 1 the
/// stem and `layer1…layerk` (their conv weights and norm affines are not trainable).
public final class ResNet: Module {
    public let depth: Int
    /// Base width: stem channels and the first stage's `planes`.
    public let width: Int
    public let norm: ResNetNorm
    public let conv1: Conv2dModule
    public let bn1: any ChannelNorm
    public let layers: [[any ResNetBlock]]
    /// Output channels of C2–C5.
    public let outChannels: [Int]

    /// Blocks per stage and whether the depth uses bottleneck blocks; nil for an unsupported depth.
    public static func layout(depth: Int) -> (blocks: [Int], bottleneck: Bool)? {
        switch depth {
        case 18: ([2, 2, 2, 2], false)
        case 34: ([3, 4, 6, 3], false)
        case 50: ([3, 4, 6, 3], true)
        case 101: ([3, 4, 23, 3], true)
        default: nil
        }
    }

    /// Output channels of C2–C5 for `depth` and base `width`.
    public static func outChannels(depth: Int, width: Int = 64) -> [Int] {
        guard let layout = layout(depth: depth) else { preconditionFailure("ResNet depth \(depth) not supported (18, 34, 50 or 101)") }
        let expansion = layout.bottleneck ? Bottleneck.expansion : BasicBlock.expansion
        return (0..<4).map { (width << $0) * expansion }
    }

    public init(depth: Int, width: Int = 64, norm: ResNetNorm = .frozenBatchNorm, frozenStages: Int = 1) {
        guard let layout = ResNet.layout(depth: depth) else {
            preconditionFailure("ResNet depth \(depth) not supported (18, 34, 50 or 101)")
        }
        let blocks = layout.blocks, bottleneck = layout.bottleneck
        precondition(width > 0, "ResNet width \(width) must be positive")
        precondition((-1...4).contains(frozenStages), "ResNet frozenStages \(frozenStages) outside -1...4")
        if case .groupNorm(let groups) = norm {
            precondition(groups > 0 && width % groups == 0, "ResNet width \(width) not divisible into \(groups) GroupNorm groups")
        }
        self.depth = depth
        self.width = width
        self.norm = norm
        conv1 = Conv2dModule(3, width, kernel: 7, stride: 2, padding: 3, weightInit: Conv2dModule.kaimingFanOut(width, kernel: 7))
        bn1 = norm.make(width)
        var inChannels = width
        var layers: [[any ResNetBlock]] = []
        for (stage, count) in blocks.enumerated() {
            let planes = width << stage
            layers.append((0..<count).map { i -> any ResNetBlock in
                let stride = i == 0 && stage > 0 ? 2 : 1
                let block: any ResNetBlock = bottleneck
                    ? Bottleneck(inChannels: inChannels, planes: planes, stride: stride, norm: norm)
                    : BasicBlock(inChannels: inChannels, planes: planes, stride: stride, norm: norm)
                inChannels = planes * (bottleneck ? Bottleneck.expansion : BasicBlock.expansion)
                return block
            })
        }
        self.layers = layers
        outChannels = ResNet.outChannels(depth: depth, width: width)
        super.init()
        child("conv1", conv1)
        child("bn1", bn1)
        var frozenModules: [Module] = frozenStages >= 0 ? [conv1, bn1] : []
        for (stage, blocks) in layers.enumerated() {
            let layer = child("layer\(stage + 1)", Module())
            for (i, block) in blocks.enumerated() { layer.child("\(i)", block) }
            if stage < frozenStages { frozenModules.append(layer) }
        }
        for module in frozenModules {
            module.frozen = true
            for (_, p) in module.namedParameters() { p.requiresGrad = false }
        }
    }

    /// images `[B, 3, H, W]` → `[C2, C3, C4, C5]`.
    public func callAsFunction(_ images: Tensor) -> [Tensor] {
        var x = bn1(conv1(images)).relu().maxPool2d(kernel: (3, 3), stride: (2, 2), padding: (1, 1))
        var outs: [Tensor] = []
        for blocks in layers {
            for block in blocks { x = block(x) }
            outs.append(x)
        }
        return outs
    }
}

/// AdaMixer's `ChannelMapping` neck: a 1×1 conv with bias per level to `outChannels` (Xavier, bias 0), then
/// ONE GroupNorm shared by all levels (`convs.i`, `norm`). No top-down path, no activation.
public final class ChannelMapper: Module {
    public let convs: [Conv2dModule]
    public let normWeight: Tensor
    public let normBias: Tensor
    public let groups: Int

    public init(inChannels: [Int], outChannels: Int, groups: Int = 32) {
        self.groups = groups
        convs = inChannels.map {
            Conv2dModule($0, outChannels, kernel: 1, bias: true, weightInit: .xavierUniform(fanIn: $0, fanOut: outChannels))
        }
        normWeight = Module.newParameter([outChannels])
        normBias = Module.newParameter([outChannels])
        super.init()
        let list = child("convs", Module())
        for (i, c) in convs.enumerated() { list.child("\(i)", c) }
        let norm = child("norm", Module())
        norm.register("weight", normWeight, .ones)
        norm.register("bias", normBias, .zeros)
    }

    /// One `[B, outChannels, H_l, W_l]` per input level.
    public func callAsFunction(_ features: [Tensor]) -> [Tensor] {
        precondition(features.count == convs.count, "ChannelMapper: \(features.count) levels for \(convs.count) convs")
        return zip(convs, features).map { conv, f in conv(f).groupNorm(groups: groups, weight: normWeight, bias: normBias) }
    }
}

/// The 1×1 projection of a residual block's shortcut (torchvision's `downsample`), when the stride or the channel
/// count changes; nil otherwise.
func residualProjection(_ inChannels: Int, _ out: Int, stride: Int, norm: ResNetNorm) -> (Conv2dModule?, (any ChannelNorm)?) {
    guard stride != 1 || inChannels != out else { return (nil, nil) }
    return (Conv2dModule(inChannels, out, kernel: 1, stride: stride, weightInit: Conv2dModule.kaimingFanOut(out, kernel: 1)),
            norm.make(out))
}

extension Module {
    /// Registers a shortcut projection as `downsample.0` (conv) and `downsample.1` (norm), torchvision's names.
    func registerProjection(_ conv: Conv2dModule?, _ norm: (any ChannelNorm)?) {
        guard let conv, let norm else { return }
        let down = child("downsample", Module())
        down.child("0", conv)
        down.child("1", norm)
    }
}
