import LorsNN
import LorsTensor

/// LORS mixing of the whole AdaMixer decoder (official `FactorizedAdaptiveMixing`, docs/lors.md): one module
/// owned by the decoder and called by every stage with its index. Built from the generic LORS layers: the ACM/ASM
/// weights are a LORSA stack (`LORSAShared` + one `LORSALayer` per stage), W_o is a LORST stack (`LORSTShared` +
/// one `LORSTLayer` per stage), so each stage evaluates M, S and W_o by whichever path (materialised or factored,
/// `((X·L)·Z(q))·R`) costs fewer multiply-adds for its input (see `LORSALayer`, `LORSTLayer`, `flopReport`).
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
///
/// The parameter names above are those of the PyTorch fixtures (`scripts/make_adamixer_fixtures.py`) and of
/// checkpoints; the generic layers are placed under them as inlined children (`Module.child("", _)`).
public final class FactorizedAdaptiveMixing: Module, AdaMixerMixing {
    /// Private parameters of one stage (`private.i`): its LORSA layer, its W_o LORST layer and its LayerNorm.
    public final class StageFactors: Module {
        /// M and S of this stage (`generator.*`, `m_left`, `m_right`, `s_left`, `s_right`).
        public let lorsa: LORSALayer
        /// W_o of this stage (`out_A`, `out_B`, `out_bias`).
        public let outProj: LORSTLayer
        public let outNorm: LayerNorm

        init(lorsa: LORSALayer, outProj: LORSTLayer, contentDim: Int) {
            self.lorsa = lorsa
            self.outProj = outProj
            outNorm = LayerNorm(contentDim)
            super.init()
            child("", lorsa)
            child("", outProj)
            child("out_norm", outNorm)
        }
    }

    public let groups: Int, groupChannels: Int, inPoints: Int, outPoints: Int
    /// The shared ACM/ASM generator (`shared.generator`).
    public let sharedLORSA: LORSAShared
    /// The shared W_o `[C, G·P_out·C_g]` (`shared.out_proj.weight`).
    public let sharedOutProj: LORSTShared
    /// Per-stage private parts (`private.i`).
    public let stages: [StageFactors]

    public init(contentDim c: Int, groups: Int, inPoints: Int, outPoints: Int, settings: AdaMixerLORSConfiguration) {
        precondition(settings.lorsaGroups.count == settings.lorstGroups.count,
                     "FactorizedAdaptiveMixing: \(settings.lorsaGroups.count) LORSA group counts for \(settings.lorstGroups.count) LORST ones")
        self.groups = groups
        groupChannels = c / groups
        self.inPoints = inPoints
        self.outPoints = outPoints
        let cg = c / groups, flat = groups * outPoints * cg
        let operators = AdaptiveOperatorSpec.adaMixer(channelsIn: cg, channelsOut: cg, pointsIn: inPoints, pointsOut: outPoints)
        let lorsa = LORSAShared(queryDim: c, groups: groups, operators: operators,
                                initialization: settings.sharedInit == .official ? .officialCode : .paper)
        let outProj = LORSTShared(flat, c)
        sharedLORSA = lorsa
        sharedOutProj = outProj
        stages = zip(settings.lorsaGroups, settings.lorstGroups).map { k, kt in
            StageFactors(lorsa: LORSALayer(shared: lorsa, rank: settings.lorsaRank, kernelGroups: k, names: .adaMixer),
                         outProj: LORSTLayer(shared: outProj, rank: settings.lorstRank, groups: kt, namePrefix: "out_"),
                         contentDim: c)
        }
        super.init()
        let shared = child("shared", Module())
        shared.child("", lorsa)
        shared.child("out_proj", outProj)
        let list = child("private", Module())
        for (i, s) in stages.enumerated() { list.child("\(i)", s) }
    }

    /// Forces every stage's M, S and W_o onto one evaluation path (tests; training leaves `.automatic`).
    public func setEvaluation(_ evaluation: LORSTLayer.Evaluation) {
        for s in stages {
            s.lorsa.evaluation = evaluation
            s.outProj.evaluation = evaluation
        }
    }

    public func mix(stage: Int, sampled: Tensor, query: Tensor) -> Tensor {
        precondition(stage >= 0 && stage < stages.count, "FactorizedAdaptiveMixing: stage \(stage) of \(stages.count)")
        let f = stages[stage]
        let (b, n) = (query.shape[0], query.shape[1])
        let generated = f.lorsa.generate(query: query)
        let x = sampled.reshaped([b * n, groups, inPoints, groupChannels])
        let mixed = adaptiveMix(x, batch: b, queries: n, m: { generated.apply(0, to: $0) }, s: { generated.apply(1, to: $0) })
        return f.outNorm(query + f.outProj(mixed))
    }

    /// One generated or static weight of one stage, with the path its layer chooses for the given input size.
    public struct LayerCost: Sendable, Equatable {
        public var stage: Int
        /// `M` (ACM), `S` (ASM) or `W_o`.
        public var weight: String
        public var materialized: Bool
        /// Forward multiply-adds of the chosen path and of the two paths.
        public var chosen: Int { materialized ? materializedMACs : factoredMACs }
        public var materializedMACs: Int
        public var factoredMACs: Int
    }

    /// Per stage, M, S and W_o: the path `.automatic` takes and the forward multiply-adds of both paths for
    /// `batch` images × `queries` queries (what the stage's mixing costs; FLOPs = 2 × multiply-adds). LORSA counts
    /// include generating the shared and private parts from the queries (equal for both paths) and applying them.
    public func flopReport(batch: Int, queries: Int) -> [LayerCost] {
        let q = batch * queries
        var out: [LayerCost] = []
        for (i, s) in stages.enumerated() {
            for (index, op) in s.lorsa.operators.enumerated() {
                let free = op.side == .right ? inPoints : groupChannels
                let cost = s.lorsa.forwardCost(op, queries: q, free: free)
                out.append(LayerCost(stage: i, weight: index == 0 ? "M" : "S", materialized: s.lorsa.materializes(op, free: free),
                                     materializedMACs: cost.materialized, factoredMACs: cost.factored))
            }
            out.append(LayerCost(stage: i, weight: "W_o", materialized: s.outProj.materializes(rows: q),
                                 materializedMACs: s.outProj.materializedCost(rows: q), factoredMACs: s.outProj.factoredCost(rows: q)))
        }
        return out
    }
}
