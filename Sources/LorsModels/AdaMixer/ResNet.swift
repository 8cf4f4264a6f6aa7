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

/// ResNet bottleneck, pytorch style (the stride sits on the 3×3 conv): `relu(bn3(conv3(relu(bn2(conv2(relu(bn1(conv1 x))))))) + down(x))`.
public final class Bottleneck: Module {
    public let conv1: Conv2dModule, bn1: FrozenBatchNorm
    public let conv2: Conv2dModule, bn2: FrozenBatchNorm
    public let conv3: Conv2dModule, bn3: FrozenBatchNorm
    public let downsampleConv: Conv2dModule?, downsampleNorm: FrozenBatchNorm?

    public static let expansion = 4

    public init(inChannels: Int, planes: Int, stride: Int) {
        let out = planes * Bottleneck.expansion
        conv1 = Conv2dModule(inChannels, planes, kernel: 1, weightInit: Conv2dModule.kaimingFanOut(planes, kernel: 1))
        bn1 = FrozenBatchNorm(planes)
        conv2 = Conv2dModule(planes, planes, kernel: 3, stride: stride, padding: 1, weightInit: Conv2dModule.kaimingFanOut(planes, kernel: 3))
        bn2 = FrozenBatchNorm(planes)
        conv3 = Conv2dModule(planes, out, kernel: 1, weightInit: Conv2dModule.kaimingFanOut(out, kernel: 1))
        bn3 = FrozenBatchNorm(out)
        if stride != 1 || inChannels != out {
            downsampleConv = Conv2dModule(inChannels, out, kernel: 1, stride: stride, weightInit: Conv2dModule.kaimingFanOut(out, kernel: 1))
            downsampleNorm = FrozenBatchNorm(out)
        } else {
            downsampleConv = nil
            downsampleNorm = nil
        }
        super.init()
        child("conv1", conv1); child("bn1", bn1)
        child("conv2", conv2); child("bn2", bn2)
        child("conv3", conv3); child("bn3", bn3)
        if let downsampleConv, let downsampleNorm {
            let down = child("downsample", Module())
            down.child("0", downsampleConv)
            down.child("1", downsampleNorm)
        }
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

/// ResNet-50/101 backbone (torchvision names: `conv1`, `bn1`, `layer1.0.conv1`, ...), no classifier.
/// Returns C2–C5 (256, 512, 1024, 2048 channels at strides 4, 8, 16, 32).
///
/// `frozenStages = k` freezes the stem and `layer1…layerk` (their weights and BN affines are not trainable).
public final class ResNet: Module {
    public let depth: Int
    public let conv1: Conv2dModule
    public let bn1: FrozenBatchNorm
    public let layers: [[Bottleneck]]
    /// Output channels of C2–C5.
    public static let outChannels = [256, 512, 1024, 2048]

    public init(depth: Int, frozenStages: Int = 1) {
        let blocks: [Int]
        switch depth {
        case 50: blocks = [3, 4, 6, 3]
        case 101: blocks = [3, 4, 23, 3]
        default: preconditionFailure("ResNet depth \(depth) not supported (50 or 101)")
        }
        self.depth = depth
        conv1 = Conv2dModule(3, 64, kernel: 7, stride: 2, padding: 3, weightInit: Conv2dModule.kaimingFanOut(64, kernel: 7))
        bn1 = FrozenBatchNorm(64)
        var inChannels = 64
        var layers: [[Bottleneck]] = []
        for (stage, count) in blocks.enumerated() {
            let planes = 64 << stage
            layers.append((0..<count).map { i in
                let block = Bottleneck(inChannels: inChannels, planes: planes, stride: i == 0 && stage > 0 ? 2 : 1)
                inChannels = planes * Bottleneck.expansion
                return block
            })
        }
        self.layers = layers
        super.init()
        child("conv1", conv1)
        child("bn1", bn1)
        var frozenModules: [Module] = frozenStages >= 0 ? [conv1, bn1] : []
        for (stage, blocks) in layers.enumerated() {
            let layer = child("layer\(stage + 1)", Module())
            for (i, block) in blocks.enumerated() { layer.child("\(i)", block) }
            if stage < frozenStages { frozenModules.append(layer) }
        }
        if frozenStages < 1 { frozenModules = [] }
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
