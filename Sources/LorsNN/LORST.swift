import LorsTensor

/// The shared matrix `W_sh` `[out, in]` of a static LORS stack (docs/lors.md, "LORST"): one tensor used by
/// every `LORSTLayer` built on it; no bias (each layer owns its private bias).
///
/// Register this module exactly once where its canonical name should live (the ViT registers it as
/// `lors.<role>`, so the tensor is `lors.qkv.weight`); the layers only reference it with
/// `registerShared`, so it is one parameter, initialised once, whose gradient is the sum of the
/// layers' contributions.
public final class LORSTShared: Module {
    public let inFeatures: Int
    public let outFeatures: Int
    /// `W_sh` `[out, in]`.
    public let weight: Tensor

    /// `initializer` defaults to PyTorch's Linear default (`kaiming_uniform_(a=√5)`, bound 1/√in), as
    /// for AdaMixer's shared W_o; DeiT uses truncated normal σ=0.02 (qkv, proj) and Xavier (fc1, fc2).
    public init(_ inFeatures: Int, _ outFeatures: Int, initializer: Initializer? = nil) {
        self.inFeatures = inFeatures
        self.outFeatures = outFeatures
        weight = Module.newParameter([outFeatures, inFeatures])
        super.init()
        register("weight", weight, initializer ?? .kaimingUniform(fanIn: inFeatures, a: Float(5).squareRoot()))
    }
}

/// One layer of a static LORS stack: `y = x W_iᵀ + b_i` with `W_i = W_sh + Σ_{k<K} B_ik A_ik`
/// (docs/lors.md, "LORST"), x `[..., in]` → `[..., out]`.
///
/// The K rank-r pairs are stored folded into one pair of rank `K·r` — `A` `[K·r, in]`, `B` `[out, K·r]` —
/// which is exactly `Σ_k B_k A_k` (block k is rows `k·r..<(k+1)·r` of A and the same columns of B).
/// This is the DeiT code's layout; AdaMixer's W_o is the case K = 1. `groups` = 0 is allowed: the
/// layer is then `x W_shᵀ + b_i`.
///
/// Initialisation (official code): A `kaiming_uniform_` with default arguments (a = 0), bound √(6/in);
/// B zeros (so every layer starts as exactly W_sh); bias zeros. The shared weight is initialised by
/// its owner `LORSTShared`, not by this layer.
///
/// Parameters: `A`, `B`, `bias` (each after `namePrefix`), and the shared tensor registered as `shared.weight`
/// (a reference; the first registration reached — the owner's — names it in a model).
///
/// Evaluation, for n = rows of x (product of the leading dimensions), R = K·r, in/out features
/// (multiply-adds of the forward pass; the backward pass costs about twice the same terms):
/// - materialised: `W_i = W_sh + B·A` then `x W_iᵀ`: out·in·R + n·in·out;
/// - factored: `x W_shᵀ + ((x Aᵀ) Bᵀ)`: n·in·out + n·R·(in + out).
/// The materialised form is cheaper iff out·in < n·(in + out), i.e. for more than in·out/(in+out)
/// rows (144 for DeiT-tiny's qkv: any real batch). `evaluation` overrides the choice.
public final class LORSTLayer: Module, DenseAffineMap {
    /// How `callAsFunction` evaluates the layer.
    public enum Evaluation: Sendable { case automatic, materialized, factored }

    public let shared: LORSTShared
    /// Rank r of each group.
    public let rank: Int
    /// Number of groups K (0 allowed).
    public let groups: Int
    /// `[K·r, in]`, nil when K·r = 0.
    public let A: Tensor?
    /// `[out, K·r]`, nil when K·r = 0.
    public let B: Tensor?
    /// Private bias `[out]`, or nil.
    public let bias: Tensor?
    /// Evaluation path (tests force one; training leaves `.automatic`).
    public var evaluation: Evaluation = .automatic

    public var inFeatures: Int { shared.inFeatures }
    public var outFeatures: Int { shared.outFeatures }
    /// Folded rank K·r.
    public var totalRank: Int { rank * groups }

    /// `namePrefix` is prepended to `A`, `B` and `bias` (the AdaMixer detector's W_o uses `out_`: `out_A`, ...).
    public init(shared: LORSTShared, rank: Int, groups: Int = 1, bias hasBias: Bool = true, namePrefix: String = "") {
        precondition(rank >= 0 && groups >= 0, "LORST rank \(rank) and groups \(groups) must be non-negative")
        self.shared = shared
        self.rank = rank
        self.groups = groups
        let r = rank * groups
        A = r > 0 ? Module.newParameter([r, shared.inFeatures]) : nil
        B = r > 0 ? Module.newParameter([shared.outFeatures, r]) : nil
        bias = hasBias ? Module.newParameter([shared.outFeatures]) : nil
        super.init()
        if let A { register(namePrefix + "A", A, .kaimingUniform(fanIn: shared.inFeatures, a: 0)) }
        if let B { register(namePrefix + "B", B, .zeros) }
        if let bias { register(namePrefix + "bias", bias, .zeros) }
        registerShared("shared.weight", shared.weight)
    }

    /// Multiply-adds of the materialised forward for `rows` input rows.
    public func materializedCost(rows n: Int) -> Int { outFeatures * inFeatures * totalRank + n * inFeatures * outFeatures }
    /// Multiply-adds of the factored forward for `rows` input rows.
    public func factoredCost(rows n: Int) -> Int { n * inFeatures * outFeatures + n * totalRank * (inFeatures + outFeatures) }

    /// Whether `.automatic` materialises `W_i` for `rows` input rows.
    public func materializes(rows n: Int) -> Bool {
        switch evaluation {
        case .materialized: return true
        case .factored: return false
        case .automatic: return materializedCost(rows: n) <= factoredCost(rows: n)
        }
    }

    /// `W_i = W_sh + B·A` `[out, in]` (recorded, so gradients flow to all three).
    public func effectiveWeight() -> Tensor {
        guard let A, let B else { return shared.weight }
        return shared.weight + B.matmul(A)
    }

    /// x `[..., in]` → `[..., out]`.
    public func callAsFunction(_ x: Tensor) -> Tensor {
        precondition(x.rank >= 1 && x.shape[x.rank - 1] == inFeatures,
                     "LORST layer expects [..., \(inFeatures)], got \(x.shape)")
        let n = x.count / Swift.max(inFeatures, 1)
        let x2 = x.rank == 1 ? x.reshaped([1, inFeatures]) : x
        var y: Tensor
        if let A, let B, !materializes(rows: n) {
            y = x2.linear(weight: shared.weight, bias: bias) + x2.matmul(A, transposeOther: true).matmul(B, transposeOther: true)
        } else {
            y = x2.linear(weight: effectiveWeight(), bias: bias)
        }
        return x.rank == 1 ? y.reshaped([outFeatures]) : y
    }

    /// The materialised `(W_sh + B·A, b_i)` (recorded) when `rows` rows take that path; nil on the factored path.
    public func denseAffine(rows: Int) -> (weight: Tensor, bias: Tensor?)? {
        A == nil || materializes(rows: rows) ? (effectiveWeight(), bias) : nil
    }

    /// The dense equivalent `(W_sh + B·A, b_i)` for export or inference (detached copies); a `Linear`
    /// holding them computes the same function as this layer.
    public func merged() -> (weight: Tensor, bias: Tensor?) {
        withoutGradients { (effectiveWeight().clone(), bias?.clone()) }
    }
}
