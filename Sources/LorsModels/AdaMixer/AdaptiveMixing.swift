import LorsNN
import LorsTensor

/// The mixing step of an AdaMixer stage: sampled features and the query in, the updated, normalised query out.
public protocol AdaMixerMixing: AnyObject {
    /// `sampled [B, N, G, P_in, C_g]`, `query [B, N, C]` → `LN(query + W_o · flatten(mix(sampled)))` `[B, N, C]`
    /// for decoder stage `stage`.
    func mix(stage: Int, sampled: Tensor, query: Tensor) -> Tensor
}

/// ACM then ASM with query-generated weights, per sampling group (AdaMixer's `AdaptiveMixing`):
/// `X [P_in, C_g]` → `relu(LN(X·M))` → `relu(LN(S·X))` `[P_out, C_g]`, LN over both dimensions without affine.
///
/// `x [B·N, G, P_in, C_g]`; `m` applies `·M` (`[B·N, G, P, C_g]` → `[B·N, G, P, C_g]`), `s` applies `S·`
/// (`[B·N, G, P_in, C]` → `[B·N, G, P_out, C]`) → `[B, N, G·P_out·C_g]`. Vanilla passes its generated matrices;
/// LORS passes `LORSALayer.Generated.apply`, which may never build M and S.
func adaptiveMix(_ x: Tensor, batch: Int, queries: Int, m: (Tensor) -> Tensor, s: (Tensor) -> Tensor) -> Tensor {
    var out = m(x).layerNorm(lastDims: 2, weight: nil, bias: nil).relu()
    out = s(out).layerNorm(lastDims: 2, weight: nil, bias: nil).relu()
    return out.reshaped([batch, queries, out.count / (batch * queries)])
}

/// Vanilla AdaMixer mixing of one stage (`mixing.parameter_generator`, `mixing.out_proj`, `mixing.norm`).
///
/// `parameter_generator`: Linear C → G·(C_g² + P_out·P_in) producing, per group, M (row-major C_g×C_g) followed
/// by S (P_out×P_in); weight zero, bias U(±1/√C). `out_proj`: Linear G·P_out·C_g → C (Xavier, bias U(±1/√in)).
/// `norm`: LayerNorm(C) after the residual.
public final class AdaptiveMixing: Module, AdaMixerMixing {
    public let groups: Int, groupChannels: Int, inPoints: Int, outPoints: Int
    public let parameterGenerator: Linear
    public let outProj: Linear
    public let norm: LayerNorm

    public init(contentDim: Int, groups: Int, inPoints: Int, outPoints: Int) {
        self.groups = groups
        groupChannels = contentDim / groups
        self.inPoints = inPoints
        self.outPoints = outPoints
        let width = groups * (groupChannels * groupChannels + inPoints * outPoints)
        parameterGenerator = Linear(contentDim, width, weightInit: .zeros)
        let flat = groups * outPoints * groupChannels
        outProj = Linear(flat, contentDim, weightInit: .xavierUniform(fanIn: flat, fanOut: contentDim))
        norm = LayerNorm(contentDim)
        super.init()
        child("parameter_generator", parameterGenerator)
        child("out_proj", outProj)
        child("norm", norm)
    }

    public func mix(stage: Int, sampled: Tensor, query: Tensor) -> Tensor {
        let (b, n) = (query.shape[0], query.shape[1])
        let cg = groupChannels, mSize = cg * cg, sSize = outPoints * inPoints
        let params = parameterGenerator(query).reshaped([b * n, groups, mSize + sSize])
        let parts = params.split(axis: 2, sizes: [mSize, sSize])
        let m = parts[0].reshaped([b * n, groups, cg, cg])
        let s = parts[1].reshaped([b * n, groups, outPoints, inPoints])
        let x = sampled.reshaped([b * n, groups, inPoints, cg])
        let mixed = adaptiveMix(x, batch: b, queries: n, m: { $0.matmul(m) }, s: { s.matmul($0) })
        return norm(query + outProj(mixed))
    }
}
