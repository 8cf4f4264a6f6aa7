import LorsTensor

/// One query-generated matrix of an adaptive LORS stack (AdaMixer's ACM `M` or ASM `S`).
public struct AdaptiveOperatorSpec: Sendable, Equatable {
    /// Which side of the sampled features `X` the generated matrix multiplies.
    public enum Side: Sendable { case right, left }
    /// Parameter-name stem (`m`, `s`).
    public let name: String
    /// `.right`: `X·W`, X `[P, rows]` → `[P, cols]` (ACM, `M` is C_in × C_out).
    /// `.left`: `W·X`, X `[cols, C]` → `[rows, C]` (ASM, `S` is P_out × P_in).
    public let side: Side
    public let rows: Int
    public let cols: Int

    public init(name: String, side: Side, rows: Int, cols: Int) {
        self.name = name
        self.side = side
        self.rows = rows
        self.cols = cols
    }

    /// AdaMixer's pair: `M` `[C_in, C_out]` applied as X·M, then `S` `[P_out, P_in]` applied as S·X
    /// (the order of the official generators' outputs).
    public static func adaMixer(channelsIn: Int, channelsOut: Int, pointsIn: Int, pointsOut: Int) -> [AdaptiveOperatorSpec] {
        [AdaptiveOperatorSpec(name: "m", side: .right, rows: channelsIn, cols: channelsOut),
         AdaptiveOperatorSpec(name: "s", side: .left, rows: pointsOut, cols: pointsIn)]
    }
}

/// Initialisation of a LORSA stack (docs/lors.md, "LORSA").
public enum LORSAInitialization: Sendable {
    /// Official code: shared generator weight zero, bias U(±1/√d_q); core generators weight and bias
    /// zero; L, R `kaiming_uniform_` (a = 0) with fan_in = product of their last two dimensions.
    case officialCode
    /// Paper: shared generator weight Kaiming-uniform (a = 0, fan_in d_q; bias U(±1/√d_q) as PyTorch);
    /// L, R as above; core generators zero.
    case paper
}

/// The shared part of an adaptive LORS stack: one generator `Linear(d_q → G·Σ_ops rows·cols)` producing,
/// for each query and each of the G groups, every operator's shared matrix `Ŵ_sh(q)` (docs/lors.md, "LORSA").
///
/// Output layout per query: `[G, Σ_ops rows·cols]`, operators in `operators` order, each row-major
/// `[rows, cols]` (AdaMixer: `M` then `S`). Register once where its canonical name lives
/// (`generator.weight`, `generator.bias` under that prefix); layers reference it via `registerShared`.
public final class LORSAShared: Module {
    public let queryDim: Int
    public let groups: Int
    public let operators: [AdaptiveOperatorSpec]
    public let generator: Linear

    public init(queryDim: Int, groups: Int, operators: [AdaptiveOperatorSpec], initialization: LORSAInitialization = .officialCode) {
        precondition(queryDim > 0 && groups > 0 && !operators.isEmpty, "LORSA needs d_q > 0, G > 0 and at least one operator")
        self.queryDim = queryDim
        self.groups = groups
        self.operators = operators
        let size = groups * operators.reduce(0) { $0 + $1.rows * $1.cols }
        let weightInit: Initializer = initialization == .officialCode ? .zeros : .kaimingUniform(fanIn: queryDim, a: 0)
        generator = Linear(queryDim, size, weightInit: weightInit, biasInit: .uniform(bound: 1 / Float(queryDim).squareRoot()))
        super.init()
        child("generator", generator)
    }

    /// Shared matrices for queries `q` `[Q, d_q]`: one `[Q, G, rows, cols]` per operator.
    public func generate(_ q: Tensor) -> [Tensor] {
        let n = q.shape[0]
        let all = generator(q).reshaped([n, groups, -1])
        let parts = operators.count == 1 ? [all] : all.split(axis: 2, sizes: operators.map { $0.rows * $0.cols })
        return zip(parts, operators).map { p, op in p.reshaped([n, groups, op.rows, op.cols]) }
    }
}

/// One layer (stage) of an adaptive LORS stack: `Ŵ_i(q) = Ŵ_sh(q) + Σ_{k<K} L_ik · Z_ik(q) · R_ik` for
/// every operator and group (docs/lors.md, "LORSA"; `FactorizedAdaptiveMixing` semantics).
///
/// Parameters (per operator `o`): `o.L` `[G·K, rows, r]`, `o.R` `[G·K, r, cols]` (index g·K + k), and
/// `core_generator` = `Linear(d_q → n_ops·G·K·r²)` whose output per query is `[n_ops, G·K, r, r]`
/// (operator-major, as the official `[2, G·K, r, r]`); the shared generator is referenced as
/// `shared.generator.weight` / `.bias`. K = 0 leaves only the shared part. (`ParameterNames.adaMixer` names them
/// `m_left`, `m_right`, `generator`, as the AdaMixer detector's fixtures and checkpoints.)
///
/// Evaluation of one operator on X for one query and group, with n the free dimension of X
/// (P for `.right`, C for `.left`); multiply-adds, the shared apply (n·rows·cols) common to both:
/// - materialised: build `L·Z·R` (K·rows·r·(r + cols)) and add it (K·rows·cols), then apply once;
/// - factored: `((X·L)·Z)·R` or `L·(Z·(R·X))`: K·n·r·(rows + r + cols), plus the shared apply.
/// The materialised path is chosen iff K·rows·(r·(r + cols) + cols) ≤ K·n·r·(rows + r + cols)
/// (AdaMixer-LORS ACM, rows = cols = 128, r = 16, K = 1, n = P_in = 64: 311 k vs 279 k → factored);
/// the backward pass costs about twice the same terms. `evaluation` overrides the choice.
public final class LORSALayer: Module {
    public typealias Evaluation = LORSTLayer.Evaluation

    public let shared: LORSAShared
    public let rank: Int
    /// Number of private groups K_i (0 allowed).
    public let kernelGroups: Int
    /// Core generator, nil when K·r = 0.
    public let coreGenerator: Linear?
    /// Per operator: `[G·K, rows, r]`.
    public let left: [Tensor]
    /// Per operator: `[G·K, r, cols]`.
    public let right: [Tensor]
    public var evaluation: Evaluation = .automatic

    public var operators: [AdaptiveOperatorSpec] { shared.operators }
    public var groups: Int { shared.groups }

    /// Parameter names of a layer's own tensors. `generic`: `m.L`, `m.R`, `core_generator.*`; the AdaMixer
    /// detector keeps the names of its fixtures and checkpoints: `m_left`, `m_right`, `generator.*`.
    public struct ParameterNames: Sendable, Equatable {
        /// Appended to the operator name for L and R (`m` + `.L`).
        public var leftSuffix: String
        public var rightSuffix: String
        /// Child name of the core generator.
        public var coreGenerator: String

        public init(leftSuffix: String, rightSuffix: String, coreGenerator: String) {
            self.leftSuffix = leftSuffix
            self.rightSuffix = rightSuffix
            self.coreGenerator = coreGenerator
        }

        public static let generic = ParameterNames(leftSuffix: ".L", rightSuffix: ".R", coreGenerator: "core_generator")
        /// The AdaMixer `FactorizedAdaptiveMixing` stage layout (`private.i.m_left`, `private.i.generator.weight`).
        public static let adaMixer = ParameterNames(leftSuffix: "_left", rightSuffix: "_right", coreGenerator: "generator")
    }

    public init(shared: LORSAShared, rank: Int, kernelGroups: Int, names: ParameterNames = .generic) {
        precondition(rank >= 0 && kernelGroups >= 0, "LORSA rank \(rank) and groups \(kernelGroups) must be non-negative")
        self.shared = shared
        self.rank = rank
        self.kernelGroups = kernelGroups
        let gk = shared.groups * kernelGroups, active = rank * kernelGroups > 0
        coreGenerator = active ? Linear(shared.queryDim, shared.operators.count * gk * rank * rank, weightInit: .zeros, biasInit: .zeros) : nil
        left = active ? shared.operators.map { Module.newParameter([gk, $0.rows, rank]) } : []
        right = active ? shared.operators.map { Module.newParameter([gk, rank, $0.cols]) } : []
        super.init()
        // Both initialisation choices zero the cores and Kaiming-initialise L, R (fan_in = last two dims).
        for (i, op) in shared.operators.enumerated() where active {
            register(op.name + names.leftSuffix, left[i], .kaimingUniform(fanIn: op.rows * rank, a: 0))
            register(op.name + names.rightSuffix, right[i], .kaimingUniform(fanIn: rank * op.cols, a: 0))
        }
        if let coreGenerator { child(names.coreGenerator, coreGenerator) }
        registerShared("shared.generator.weight", shared.generator.weight)
        if let b = shared.generator.bias { registerShared("shared.generator.bias", b) }
    }

    /// Multiply-adds beyond the shared apply, per query and group, of the materialised path.
    public func materializedCost(_ op: AdaptiveOperatorSpec, free n: Int) -> Int {
        kernelGroups * op.rows * (rank * (rank + op.cols) + op.cols)
    }
    /// Multiply-adds beyond the shared apply, per query and group, of the factored path.
    public func factoredCost(_ op: AdaptiveOperatorSpec, free n: Int) -> Int {
        kernelGroups * n * rank * (op.rows + rank + op.cols)
    }

    /// Forward multiply-adds of operator `op` for `queries` queries with free dimension `n`, on each path:
    /// generating its shared matrices and cores (Q·d_q·G·(rows·cols + K·r²)), the shared apply (Q·G·n·rows·cols),
    /// plus `materializedCost` or `factoredCost` per query and group. FLOPs are twice these.
    public func forwardCost(_ op: AdaptiveOperatorSpec, queries: Int, free n: Int) -> (materialized: Int, factored: Int) {
        let g = groups, generation = queries * shared.queryDim * g * (op.rows * op.cols + kernelGroups * rank * rank)
        let common = generation + queries * g * n * op.rows * op.cols
        return (common + queries * g * materializedCost(op, free: n), common + queries * g * factoredCost(op, free: n))
    }

    /// Everything generated from the queries for this layer; apply operators with `apply`.
    public struct Generated {
        public let layer: LORSALayer
        /// Per operator `[Q, G, rows, cols]`.
        public let sharedMatrices: [Tensor]
        /// Per operator `[Q, G·K, r, r]` (empty when K·r = 0).
        public let cores: [Tensor]

        /// The per-query matrices `Ŵ_i(q)` `[Q, G, rows, cols]` of operator `index`.
        public func materialized(_ index: Int) -> Tensor {
            guard !cores.isEmpty else { return sharedMatrices[index] }
            let l = layer, op = l.operators[index], q = cores[index].shape[0], g = l.groups, k = l.kernelGroups
            let lz = LORSALayer.staticTimes(l.left[index], cores[index])      // [Q, GK, rows, r]
            let lzr = LORSALayer.timesStatic(lz, l.right[index])             // [Q, GK, rows, cols]
            let privateSum = k == 1 ? lzr.reshaped([q, g, op.rows, op.cols])
                                    : lzr.reshaped([q, g, k, op.rows, op.cols]).sum(axes: [2])
            return sharedMatrices[index] + privateSum
        }

        /// Applies operator `index` to `x` `[Q, G, a, b]` (Q = queries, in the order of `q`'s rows):
        /// `.right` X·Ŵ with a = P, b = rows → `[Q, G, P, cols]`; `.left` Ŵ·X with a = cols, b = C → `[Q, G, rows, C]`.
        public func apply(_ index: Int, to x: Tensor) -> Tensor {
            let l = layer, op = l.operators[index]
            let q = sharedMatrices[index].shape[0], g = l.groups
            precondition(x.rank == 4 && x.shape[0] == q && x.shape[1] == g,
                         "LORSA apply: x \(x.shape) must be [\(q), \(g), _, _]")
            switch op.side {
            case .right: precondition(x.shape[3] == op.rows, "LORSA \(op.name): x \(x.shape) · [\(op.rows), \(op.cols)]")
            case .left: precondition(x.shape[2] == op.cols, "LORSA \(op.name): [\(op.rows), \(op.cols)] · x \(x.shape)")
            }
            let n = op.side == .right ? x.shape[2] : x.shape[3]
            if cores.isEmpty || l.materializes(op, free: n) {
                let w = materialized(index)
                return op.side == .right ? x.matmul(w) : w.matmul(x)
            }
            let k = l.kernelGroups, r = l.rank, z = cores[index]
            switch op.side {
            case .right:
                // Σ_k ((X·L_k)·Z_k)·R_k = [X·L_1 … X·L_K] · blockdiag(Z) · [R_1; …; R_K].
                let p = x.shape[2]
                let lcat = l.left[index].reshaped([g, k, op.rows, r]).permuted([0, 2, 1, 3]).reshaped([g, op.rows, k * r])
                var t = LORSALayer.timesStatic(x, lcat)                                   // [Q, G, P, K·r]
                t = t.reshaped([q, g, p, k, r]).permuted([0, 1, 3, 2, 4]).reshaped([q, g * k, p, r]).matmul(z)
                t = t.reshaped([q, g, k, p, r]).permuted([0, 1, 3, 2, 4]).reshaped([q, g, p, k * r])
                let rcat = l.right[index].reshaped([g, k * r, op.cols])
                return x.matmul(sharedMatrices[index]) + LORSALayer.timesStatic(t, rcat)
            case .left:
                // Σ_k L_k·(Z_k·(R_k·X)) = [L_1 … L_K] · blockdiag(Z) · [R_1; …; R_K] · X.
                let c = x.shape[3]
                let rcat = l.right[index].reshaped([g, k * r, op.cols])
                var t = LORSALayer.staticTimes(rcat, x)                                   // [Q, G, K·r, C]
                t = z.matmul(t.reshaped([q, g * k, r, c])).reshaped([q, g, k * r, c])
                let lcat = l.left[index].reshaped([g, k, op.rows, r]).permuted([0, 2, 1, 3]).reshaped([g, op.rows, k * r])
                return sharedMatrices[index].matmul(x) + LORSALayer.staticTimes(lcat, t)
            }
        }
    }

    /// Generates this layer's operators for queries `q` `[..., d_q]` (leading dimensions flattened to Q).
    public func generate(query q: Tensor) -> Generated {
        precondition(q.shape.last == shared.queryDim, "LORSA query \(q.shape) must end in d_q = \(shared.queryDim)")
        let q2 = q.reshaped([-1, shared.queryDim])
        let n = q2.shape[0]
        let sharedMatrices = shared.generate(q2)
        var cores: [Tensor] = []
        if let coreGenerator {
            let gk = groups * kernelGroups
            let all = coreGenerator(q2).reshaped([n, operators.count, gk * rank * rank])
            let parts = operators.count == 1 ? [all] : all.split(axis: 1, sizes: [Int](repeating: 1, count: operators.count))
            cores = parts.map { $0.reshaped([n, gk, rank, rank]) }
        }
        return Generated(layer: self, sharedMatrices: sharedMatrices, cores: cores)
    }

    /// Whether operator `op` is materialised for free dimension `n`.
    public func materializes(_ op: AdaptiveOperatorSpec, free n: Int) -> Bool {
        switch evaluation {
        case .materialized: return true
        case .factored: return false
        case .automatic: return materializedCost(op, free: n) <= factoredCost(op, free: n)
        }
    }

    /// `s` `[G', m, k]` (static, shared by all queries) times `a` `[Q, G', k, n]` → `[Q, G', m, n]`.
    static func staticTimes(_ s: Tensor, _ a: Tensor) -> Tensor {
        s.unsqueezed(0).broadcast(to: [a.shape[0]] + s.shape).matmul(a)
    }

    /// `a` `[Q, G', m, k]` times `s` `[G', k, n]` (static) → `[Q, G', m, n]`.
    static func timesStatic(_ a: Tensor, _ s: Tensor) -> Tensor {
        a.matmul(s.unsqueezed(0).broadcast(to: [a.shape[0]] + s.shape))
    }
}

/// A whole adaptive LORS stack as one module (the official `FactorizedAdaptiveMixing` owns all stages):
/// `shared` (the generator) and `layers.i`, addressed by stage index.
///
/// Names: `shared.generator.weight`, `layers.3.m.L`, `layers.3.core_generator.bias`, ...
public final class LORSAStack: Module {
    public let shared: LORSAShared
    public let layers: [LORSALayer]

    /// `kernelGroups[i]` = K_i of stage i (AdaMixer-LORS: r = 16, K = [1, 1, 2, 2, 3, 3]).
    public init(queryDim: Int, groups: Int, operators: [AdaptiveOperatorSpec], rank: Int, kernelGroups: [Int],
                initialization: LORSAInitialization = .officialCode) {
        let generator = LORSAShared(queryDim: queryDim, groups: groups, operators: operators, initialization: initialization)
        shared = generator
        layers = kernelGroups.map { LORSALayer(shared: generator, rank: rank, kernelGroups: $0) }
        super.init()
        child("shared", shared)
        let list = child("layers", Module())
        for (i, l) in layers.enumerated() { list.child("\(i)", l) }
    }

    /// Stage `layer`'s operators for queries `q` `[B, N, d_q]` (see `LORSALayer.generate`).
    public func generate(layer: Int, query q: Tensor) -> LORSALayer.Generated {
        precondition(layer >= 0 && layer < layers.count, "LORSA stage \(layer) out of range 0..<\(layers.count)")
        return layers[layer].generate(query: q)
    }
}
