import LorsNN
import LorsTensor

/// LORS mixing of the whole AdaMixer decoder (official `FactorizedAdaptiveMixing`, LORS_SPEC §1–§3): one module
/// owned by the decoder and called by every stage with its index.
///
/// For stage i with LORSA groups K_i and rank r, per sampling group g:
/// - `M = M_sh(q) + Σ_k L^M_{gk} · Z^M_{gk}(q) · R^M_{gk}` (C_g × C_g, applied as X·M),
/// - `S = S_sh(q) + Σ_k L^S_{gk} · Z^S_{gk}(q) · R^S_{gk}` (P_out × P_in, applied as S·X),
/// - `M_sh`, `S_sh` come from ONE shared Linear C → G·(C_g² + P_out·P_in) (`shared.generator`, same layout as vanilla),
/// - the r×r cores of stage i from `private.i.generator`, Linear C → 2·G·K_i·r², output read as `[2 (M, S), G·K_i, r, r]`
///   with group-major index `g·K_i + k`; zero weight and bias;
/// - L/R (`private.i.m_left [G·K_i, C_g, r]`, `m_right [G·K_i, r, C_g]`, `s_left [G·K_i, P_out, r]`,
///   `s_right [G·K_i, r, P_in]`): `kaiming_uniform_`, fan_in = product of the last two dimensions.
///
/// W_o is LORST: `W_i = W_sh + B_i A_i` with `shared.out_proj.weight [C, G·P_out·C_g]` (no bias, PyTorch default
/// init), `private.i.out_A [rank_i, G·P_out·C_g]` (Kaiming, bound √(6/in)), `private.i.out_B [C, rank_i]` (zero),
/// then `LN_i(q + flat·W_iᵀ + b_i)` with `private.i.out_bias` (zero) and `private.i.out_norm`.
public final class FactorizedAdaptiveMixing: Module, AdaMixerMixing {
    /// Private parameters of one stage.
    public final class StageFactors: Module {
        public let generator: Linear
        public let mLeft: Tensor, mRight: Tensor, sLeft: Tensor, sRight: Tensor
        public let outA: Tensor, outB: Tensor, outBias: Tensor
        public let outNorm: LayerNorm
        public let groupsPerSamplingGroup: Int, rank: Int

        init(contentDim c: Int, groups: Int, groupChannels cg: Int, inPoints pin: Int, outPoints pout: Int,
             lorsaRank r: Int, lorsaGroups k: Int, lorstRank: Int) {
            groupsPerSamplingGroup = k
            rank = r
            let gk = groups * k, flat = groups * pout * cg
            generator = Linear(c, 2 * gk * r * r, weightInit: .zeros, biasInit: .zeros)
            mLeft = Module.newParameter([gk, cg, r])
            mRight = Module.newParameter([gk, r, cg])
            sLeft = Module.newParameter([gk, pout, r])
            sRight = Module.newParameter([gk, r, pin])
            outA = Module.newParameter([lorstRank, flat])
            outB = Module.newParameter([c, lorstRank])
            outBias = Module.newParameter([c])
            outNorm = LayerNorm(c)
            super.init()
            child("generator", generator)
            register("m_left", mLeft, .kaimingUniform(fanIn: cg * r, a: 0))
            register("m_right", mRight, .kaimingUniform(fanIn: r * cg, a: 0))
            register("s_left", sLeft, .kaimingUniform(fanIn: pout * r, a: 0))
            register("s_right", sRight, .kaimingUniform(fanIn: r * pin, a: 0))
            register("out_A", outA, .kaimingUniform(fanIn: flat, a: 0))
            register("out_B", outB, .zeros)
            register("out_bias", outBias, .zeros)
            child("out_norm", outNorm)
        }
    }

    public let groups: Int, groupChannels: Int, inPoints: Int, outPoints: Int
    /// The shared ACM/ASM generator (`shared.generator`).
    public let sharedGenerator: Linear
    /// The shared W_o `[C, G·P_out·C_g]` (`shared.out_proj.weight`).
    public let sharedOutWeight: Tensor
    /// Per-stage private parts (`private.i`).
    public let stages: [StageFactors]

    public init(contentDim c: Int, groups: Int, inPoints: Int, outPoints: Int, settings: AdaMixerLORSConfiguration) {
        precondition(settings.lorsaGroups.count == settings.lorstGroups.count,
                     "FactorizedAdaptiveMixing: \(settings.lorsaGroups.count) LORSA group counts for \(settings.lorstGroups.count) LORST ones")
        self.groups = groups
        groupChannels = c / groups
        self.inPoints = inPoints
        self.outPoints = outPoints
        let cg = c / groups
        let width = groups * (cg * cg + inPoints * outPoints), flat = groups * outPoints * cg
        switch settings.sharedInit {
        case .official: sharedGenerator = Linear(c, width, weightInit: .zeros)
        case .paper: sharedGenerator = Linear(c, width)
        }
        sharedOutWeight = Module.newParameter([c, flat])
        stages = zip(settings.lorsaGroups, settings.lorstGroups).map { k, kt in
            StageFactors(contentDim: c, groups: groups, groupChannels: cg, inPoints: inPoints, outPoints: outPoints,
                         lorsaRank: settings.lorsaRank, lorsaGroups: k, lorstRank: kt * settings.lorstRank)
        }
        super.init()
        let shared = child("shared", Module())
        shared.child("generator", sharedGenerator)
        let outProj = shared.child("out_proj", Module())
        outProj.register("weight", sharedOutWeight, .kaimingUniform(fanIn: flat, a: Float(5).squareRoot()))
        let list = child("private", Module())
        for (i, s) in stages.enumerated() { list.child("\(i)", s) }
    }

    /// `Σ_k L_k Z_k R_k` for every query: left `[G·K, rows, r]`, cores `[B·N, G·K, r, r]`, right `[G·K, r, cols]`
    /// → `[B·N, G, rows, cols]`.
    func privateProduct(left: Tensor, cores: Tensor, right: Tensor, k: Int) -> Tensor {
        let bn = cores.shape[0], gk = cores.shape[1]
        let (rows, r, cols) = (left.shape[1], left.shape[2], right.shape[2])
        let l = left.reshaped([1, gk, rows, r]).broadcast(to: [bn, gk, rows, r])
        let rr = right.reshaped([1, gk, r, cols]).broadcast(to: [bn, gk, r, cols])
        let product = l.matmul(cores).matmul(rr)  // [B·N, G·K, rows, cols]
        return product.reshaped([bn, groups, k, rows, cols]).sum(axes: [2])
    }

    public func mix(stage: Int, sampled: Tensor, query: Tensor) -> Tensor {
        precondition(stage >= 0 && stage < stages.count, "FactorizedAdaptiveMixing: stage \(stage) of \(stages.count)")
        let f = stages[stage]
        let (b, n) = (query.shape[0], query.shape[1])
        let cg = groupChannels, mSize = cg * cg, sSize = outPoints * inPoints
        let k = f.groupsPerSamplingGroup, r = f.rank
        let shared = sharedGenerator(query).reshaped([b * n, groups, mSize + sSize]).split(axis: 2, sizes: [mSize, sSize])
        let cores = f.generator(query).reshaped([b * n, 2, groups * k, r, r])
        let mCores = cores.slice(axis: 1, 0..<1).reshaped([b * n, groups * k, r, r])
        let sCores = cores.slice(axis: 1, 1..<2).reshaped([b * n, groups * k, r, r])
        let m = shared[0].reshaped([b * n, groups, cg, cg]) + privateProduct(left: f.mLeft, cores: mCores, right: f.mRight, k: k)
        let s = shared[1].reshaped([b * n, groups, outPoints, inPoints])
            + privateProduct(left: f.sLeft, cores: sCores, right: f.sRight, k: k)
        let x = sampled.reshaped([b * n, groups, inPoints, cg])
        let mixed = adaptiveMix(x, m: m, s: s, batch: b, queries: n)
        let weight = sharedOutWeight + f.outB.matmul(f.outA)  // [C, G·P_out·C_g]
        return f.outNorm(query + mixed.matmul(weight, transposeOther: true) + f.outBias)
    }
}
