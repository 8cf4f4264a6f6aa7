import LorsTensor

/// How a parameter is initialised; applied by `Module.initializeParameters(seed:)` with a
/// random key derived from the seed and the parameter's full dotted name, so values do not
/// depend on construction order, process or rank.
public enum Initializer: Sendable {
    case zeros
    case ones
    case constant(Float)
    /// U(−bound, bound).
    case uniform(bound: Float)
    /// U(low, high).
    case uniformRange(Float, Float)
    /// N(0, std²).
    case normal(std: Float)
    /// N(0, std²) truncated to [−2, 2] (timm's `trunc_normal_` with absolute bounds), by resampling.
    case truncatedNormal(std: Float)
    /// Xavier/Glorot uniform: bound √(6 / (fanIn + fanOut)).
    case xavierUniform(fanIn: Int, fanOut: Int)
    /// PyTorch's `kaiming_uniform_(a:)`: bound √(6 / ((1 + a²) · fanIn)).
    case kaimingUniform(fanIn: Int, a: Float)
    /// Values computed by a closure from the element count and the parameter's key (structured
    /// initialisations such as AdaMixer's sampling-offset grid or its whole-image proposal boxes).
    case custom(@Sendable (_ count: Int, _ key: RandomKey) -> [Float])

    /// Values for `count` elements drawn with `key`.
    public func values(count: Int, key: RandomKey) -> [Float] {
        switch self {
        case .zeros: return [Float](repeating: 0, count: count)
        case .ones: return [Float](repeating: 1, count: count)
        case .constant(let v): return [Float](repeating: v, count: count)
        case .uniform(let b): return key.uniforms(count, low: -b, high: b)
        case .uniformRange(let lo, let hi): return key.uniforms(count, low: lo, high: hi)
        case .normal(let std): return key.normals(count, std: std)
        case .truncatedNormal(let std):
            var out = key.normals(count, std: std)
            var round: UInt64 = 1
            while let bad = out.firstIndex(where: { Swift.abs($0) > 2 }) {
                let redraw = key.with(round, UInt64(bad)).normals(1, std: std)[0]
                out[bad] = redraw
                round += 1
            }
            return out
        case .xavierUniform(let fi, let fo):
            let b = (6 / Float(fi + fo)).squareRoot()
            return key.uniforms(count, low: -b, high: b)
        case .kaimingUniform(let fi, let a):
            let b = (6 / ((1 + a * a) * Float(fi))).squareRoot()
            return key.uniforms(count, low: -b, high: b)
        case .custom(let make):
            let out = make(count, key)
            precondition(out.count == count, "custom initializer returned \(out.count) values for \(count) elements")
            return out
        }
    }
}

/// Per-forward settings: training mode and the counters that key dropout and other draws.
public struct ForwardContext: Sendable {
    /// Dropout and drop-path active.
    public var training: Bool
    /// Run seed.
    public var seed: UInt64
    /// Global optimizer step (keys per-step randomness).
    public var step: Int
    /// Global index of this rank's first sample in the global batch.
    public var firstSample: Int

    public init(training: Bool, seed: UInt64 = 0, step: Int = 0, firstSample: Int = 0) {
        self.training = training
        self.seed = seed
        self.step = step
        self.firstSample = firstSample
    }

    /// Inference context (no randomness).
    public static let inference = ForwardContext(training: false)

    /// A dropout key for call site `site` at this step.
    public func key(_ site: String) -> RandomKey { RandomKey(seed: seed, purpose: site, stream: (UInt64(step), 0)) }
}

/// A layer or model: named parameters, named buffers and named children (PyTorch's
/// `nn.Module` naming, so checkpoint keys read like state-dict keys).
///
/// A tensor registered in several places (a shared LORS weight) is one parameter: it appears
/// once in `namedParameters()`, under the first name reached in registration order.
open class Module {
    /// Own parameters in registration order.
    public private(set) var ownParameters: [(name: String, tensor: Tensor, initializer: Initializer)] = []
    /// Own buffers (not trained; checkpointed).
    public private(set) var ownBuffers: [(name: String, tensor: Tensor)] = []
    /// Children in registration order.
    public private(set) var children: [(name: String, module: Module)] = []
    /// Parameters of this module (and children) that are frozen (no gradient, not counted trainable).
    public var frozen = false

    public init() {}

    /// Registers a trainable parameter of `shape` with its initializer; returns it.
    @discardableResult
    public func parameter(_ name: String, _ shape: [Int], _ initializer: Initializer) -> Tensor {
        let t = Tensor(repeating: 0, shape: shape, requiresGrad: true)
        t.name = name
        ownParameters.append((name, t, initializer))
        return t
    }

    /// Registers `tensor` (created by the caller, e.g. before `super.init()`) as a trainable parameter.
    public func register(_ name: String, _ tensor: Tensor, _ initializer: Initializer) {
        tensor.requiresGrad = true
        tensor.name = name
        ownParameters.append((name, tensor, initializer))
    }

    /// A zero tensor of `shape` that requires gradients, to be registered after `super.init()`.
    public static func newParameter(_ shape: [Int]) -> Tensor { Tensor(repeating: 0, shape: shape, requiresGrad: true) }

    /// Registers an existing tensor (e.g. a shared weight owned elsewhere) under `name`.
    public func registerShared(_ name: String, _ tensor: Tensor) {
        ownParameters.append((name, tensor, .zeros))
        sharedNames.insert(name)
    }
    private var sharedNames: Set<String> = []

    /// Registers a non-trainable buffer.
    @discardableResult
    public func buffer(_ name: String, _ tensor: Tensor) -> Tensor {
        ownBuffers.append((name, tensor))
        return tensor
    }

    /// Registers a child module; returns it. An empty `name` inlines the child: its parameters and
    /// buffers are named as if they were this module's own (a reusable layer placed under the
    /// parameter names of an existing layout, e.g. the AdaMixer LORS stage parts).
    @discardableResult
    public func child<M: Module>(_ name: String, _ module: M) -> M {
        children.append((name, module))
        return module
    }

    /// All unique parameters with full dotted names (first registration wins for shared ones).
    public func namedParameters(prefix: String = "") -> [(String, Tensor)] {
        var seen = Set<ObjectIdentifier>()
        var out: [(String, Tensor)] = []
        collect(prefix: prefix) { name, t, _ in
            if seen.insert(ObjectIdentifier(t)).inserted { out.append((name, t)) }
        }
        return out
    }

    /// Unique parameters (see `namedParameters`).
    public var parameters: [Tensor] { namedParameters().map(\.1) }

    /// Parameters that receive gradients.
    public var trainableParameters: [Tensor] { namedParameters().map(\.1).filter(\.requiresGrad) }

    /// All buffers with full dotted names.
    public func namedBuffers(prefix: String = "") -> [(String, Tensor)] {
        var out: [(String, Tensor)] = []
        for (n, b) in ownBuffers { out.append((prefix + n, b)) }
        for (n, c) in children { out += c.namedBuffers(prefix: Module.childPrefix(prefix, n)) }
        return out
    }

    /// Walks parameters depth-first in registration order (own parameters before children).
    private func collect(prefix: String, frozenAbove: Bool = false, _ visit: (String, Tensor, Initializer) -> Void) {
        for p in ownParameters where !sharedNames.contains(p.name) { visit(prefix + p.name, p.tensor, p.initializer) }
        for p in ownParameters where sharedNames.contains(p.name) { visit(prefix + p.name, p.tensor, p.initializer) }
        for (n, c) in children { c.collect(prefix: Module.childPrefix(prefix, n), visit) }
    }

    /// Initialises every owned parameter from `seed` and its full name, sets each tensor's `name`
    /// to that full dotted name, and applies `frozen`.
    public func initializeParameters(seed: UInt64, prefix: String = "") {
        for p in ownParameters where !sharedNames.contains(p.name) {
            let full = prefix + p.name
            p.tensor.name = full
            let values = p.initializer.values(count: p.tensor.count, key: RandomKey(seed: seed, purpose: "init." + full))
            p.tensor.assign(Tensor(values, shape: p.tensor.shape))
        }
        for (n, c) in children { c.initializeParameters(seed: seed, prefix: Module.childPrefix(prefix, n)) }
        applyFrozen(frozen)
    }

    /// Name prefix of child `name` under `prefix` (an empty name inlines the child).
    static func childPrefix(_ prefix: String, _ name: String) -> String { name.isEmpty ? prefix : prefix + name + "." }

    private func applyFrozen(_ inherited: Bool) {
        let f = inherited || frozen
        if f { for p in ownParameters where !sharedNames.contains(p.name) { p.tensor.requiresGrad = false } }
        for (_, c) in children { c.applyFrozen(f) }
    }

    /// Total number of unique parameter elements.
    public var parameterCount: Int { parameters.reduce(0) { $0 + $1.count } }
}
