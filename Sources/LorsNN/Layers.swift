import LorsTensor

/// A module that maps one tensor to one tensor (Linear, LORST layers, ...).
public protocol TensorMap: AnyObject {
    func callAsFunction(_ x: Tensor) -> Tensor
}

extension Linear: TensorMap {}

/// A map that, for a given number of input rows, is evaluated as one dense product `x Wᵀ + b`: it hands out that
/// (recorded) W and b so a caller can fuse the product with its neighbours (the MLP's fc1 → GELU → fc2).
public protocol DenseAffineMap: TensorMap {
    /// `(W [out, in], b [out] or nil)` when `rows` input rows are evaluated as one dense product, else nil.
    func denseAffine(rows: Int) -> (weight: Tensor, bias: Tensor?)?
}

extension Linear: DenseAffineMap {
    public func denseAffine(rows: Int) -> (weight: Tensor, bias: Tensor?)? { (weight, bias) }
}

/// LayerNorm over the last `normalizedShape.count` dimensions, with optional affine parameters.
/// `y = (x − mean) / √(var + eps) · γ + β` (biased variance, as PyTorch).
public final class LayerNorm: Module, TensorMap {
    public let normalizedShape: [Int]
    public let eps: Float
    /// γ `[normalizedShape]` (ones), or nil without affine.
    public let weight: Tensor?
    /// β `[normalizedShape]` (zeros), or nil without affine.
    public let bias: Tensor?

    public init(_ normalizedShape: [Int], eps: Float = 1e-5, affine: Bool = true) {
        self.normalizedShape = normalizedShape
        self.eps = eps
        weight = affine ? Module.newParameter(normalizedShape) : nil
        bias = affine ? Module.newParameter(normalizedShape) : nil
        super.init()
        if let weight { register("weight", weight, .ones) }
        if let bias { register("bias", bias, .zeros) }
    }

    public convenience init(_ features: Int, eps: Float = 1e-5, affine: Bool = true) {
        self.init([features], eps: eps, affine: affine)
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        x.layerNorm(lastDims: normalizedShape.count, weight: weight, bias: bias, eps: eps)
    }
}

/// Two-layer feed-forward block `fc2(drop(act(fc1(x))))` with GELU or ReLU.
public final class FeedForward: Module, TensorMap {
    public enum Activation: Sendable { case gelu, relu }
    public let fc1: Module & TensorMap
    public let fc2: Module & TensorMap
    public let activation: Activation
    public let dropout: Float
    public let site: String
    /// Context used by `callAsFunction(_:)`; set by the owner before each forward.
    public var context = ForwardContext.inference

    public init(fc1: Module & TensorMap, fc2: Module & TensorMap, activation: Activation, dropout: Float = 0, site: String) {
        self.fc1 = fc1
        self.fc2 = fc2
        self.activation = activation
        self.dropout = dropout
        self.site = site
        super.init()
        child("fc1", fc1)
        child("fc2", fc2)
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        let rows = x.count / Swift.max(1, x.shape[x.rank - 1])
        if activation == .gelu, dropout == 0 || !context.training,
           let l1 = (fc1 as? DenseAffineMap)?.denseAffine(rows: rows), let l2 = (fc2 as? DenseAffineMap)?.denseAffine(rows: rows) {
            // fc1 → GELU → fc2 fused (same values as the steps below; see Tensor.mlpGELU).
            return Tensor.mlpGELU(x, weight1: l1.weight, bias1: l1.bias, weight2: l2.weight, bias2: l2.bias)
        }
        var h = fc1(x)
        h = activation == .gelu ? h.gelu() : h.relu()
        if dropout > 0 { h = h.dropout(dropout, key: context.key(site + ".drop1"), firstRow: context.firstSample, training: context.training) }
        h = fc2(h)
        if dropout > 0 { h = h.dropout(dropout, key: context.key(site + ".drop2"), firstRow: context.firstSample, training: context.training) }
        return h
    }
}

/// Multi-head self-attention `proj(softmax(q kᵀ / √d) v)` on `[B, T, D]`, with fused qkv.
///
/// `qkv` maps D → 3D (q, k, v in that order, heads contiguous: the timm/DeiT layout).
public final class MultiHeadSelfAttention: Module {
    public let heads: Int
    public let dim: Int
    public let qkv: Module & TensorMap
    public let proj: Module & TensorMap
    public let attentionDropout: Float
    public let projectionDropout: Float
    public let site: String
    public var context = ForwardContext.inference

    public init(dim: Int, heads: Int, qkv: Module & TensorMap, proj: Module & TensorMap,
                attentionDropout: Float = 0, projectionDropout: Float = 0, site: String) {
        precondition(dim % heads == 0, "attention dim \(dim) not divisible by \(heads) heads")
        self.dim = dim
        self.heads = heads
        self.qkv = qkv
        self.proj = proj
        self.attentionDropout = attentionDropout
        self.projectionDropout = projectionDropout
        self.site = site
        super.init()
        child("qkv", qkv)
        child("proj", proj)
    }

    /// x `[B, T, D]`, optional additive attention bias broadcastable to `[B, heads, T, T]` → `[B, T, D]`; with
    /// `firstTokens: n` only the first n tokens' outputs `[B, n, D]` (attending over all T tokens).
    public func callAsFunction(_ x: Tensor, bias: Tensor? = nil, firstTokens: Int? = nil) -> Tensor {
        let hd = dim / heads
        // q, k, v are read in place from the packed projection [B, T, 3D] (no permute copies).
        let packed = qkv(x)
        if bias == nil && (attentionDropout == 0 || !context.training) {
            // Fused scores → softmax → values, one (sample, head) at a time (same values as the steps below).
            return projectOut(Tensor.selfAttention(qkv: packed, heads: heads, scale: 1 / Float(hd).squareRoot(),
                                                   queries: firstTokens))
        }
        if let firstTokens, firstTokens < x.shape[1] {
            return self(x, bias: bias).slice(axis: 1, 0..<firstTokens)
        }
        var scores = Tensor.attentionScores(qkv: packed, heads: heads, scale: 1 / Float(hd).squareRoot())  // [B, H, T, T]
        if let bias { scores = scores + bias }
        var attention = scores.softmax(axis: -1)
        if attentionDropout > 0 {
            attention = attention.dropout(attentionDropout, key: context.key(site + ".attn_drop"), firstRow: context.firstSample,
                                          training: context.training)
        }
        return projectOut(Tensor.attentionValues(probs: attention, qkv: packed, heads: heads))  // [B, T, D]
    }

    private func projectOut(_ out: Tensor) -> Tensor {
        var y = proj(out)
        if projectionDropout > 0 {
            y = y.dropout(projectionDropout, key: context.key(site + ".proj_drop"), firstRow: context.firstSample, training: context.training)
        }
        return y
    }
}

public extension Tensor {
    /// Stochastic depth: zeroes whole samples (leading axis) with probability `p`, scales the rest by 1/(1−p).
    func dropPath(_ p: Float, key: RandomKey, firstRow: Int, training: Bool) -> Tensor {
        if !training || p == 0 { return self }
        let mask = Tensor.ones([shape[0]] + [Int](repeating: 1, count: rank - 1)).dropout(p, key: key, firstRow: firstRow)
        return self * mask
    }
}

