import LorsTensor

/// `y = x Wᵀ + b`, x `[..., inFeatures]` → `[..., outFeatures]`; W `[out, in]` (PyTorch layout).
///
/// Default initialisation is PyTorch's (`kaiming_uniform_(a=√5)` → U(±1/√in) for W and U(±1/√in)
/// for b); models override it per layer (Xavier, truncated normal, zeros).
public final class Linear: Module {
    public let inFeatures: Int
    public let outFeatures: Int
    /// `[out, in]`
    public let weight: Tensor
    /// `[out]`
    public let bias: Tensor?

    public init(_ inFeatures: Int, _ outFeatures: Int, bias hasBias: Bool = true,
                weightInit: Initializer? = nil, biasInit: Initializer? = nil) {
        self.inFeatures = inFeatures
        self.outFeatures = outFeatures
        weight = Module.newParameter([outFeatures, inFeatures])
        bias = hasBias ? Module.newParameter([outFeatures]) : nil
        super.init()
        register("weight", weight, weightInit ?? .kaimingUniform(fanIn: inFeatures, a: Float(5).squareRoot()))
        if let bias { register("bias", bias, biasInit ?? .uniform(bound: 1 / Float(inFeatures).squareRoot())) }
    }

    /// Applies the layer.
    public func callAsFunction(_ x: Tensor) -> Tensor {
        x.linear(weight: weight, bias: bias)
    }
}
