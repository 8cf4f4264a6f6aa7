import LorsTensor

/// An optimizer over parameter groups (PyTorch's `torch.optim.Optimizer`).
///
/// Every tensor is updated once per step however often it is listed (a shared LORS weight
/// used by every layer is one parameter): groups are deduplicated by identity at construction,
/// the first occurrence wins. Parameters whose `.grad` is nil are skipped and their state is
/// left untouched, as in PyTorch.
///
/// State is exported as named tensors for checkpoints: `<parameter name>/<state>` at the
/// parameter's shape (`exp_avg`, `exp_avg_sq`, `momentum_buffer`), `<parameter name>/step`
/// (0-d, this parameter's update count, used for bias correction) and `step` (0-d, the number of
/// `step(learningRate:)` calls). Parameters that were never updated have no entries, so a shard
/// of the state (ZeRO-1) is simply a subset of the keys plus `step`.
public protocol Optimizer: AnyObject {
    /// The groups after deduplication.
    var groups: [ParameterGroup] { get }
    /// Every parameter once, in group order.
    var parameters: [Tensor] { get }
    /// The configured learning rate (`optimizer.lr`); `.absolute` group rates scale relative to it.
    var baseLearningRate: Double { get }
    /// Number of `step(learningRate:)` calls so far (restored by `loadStateDictionary`).
    var stepCount: Int { get }
    /// Updates every parameter that has a gradient; `learningRate` is the scheduled rate, each
    /// group applies its own multiplier.
    func step(learningRate: Double)
    /// Zeros every gradient (keeping the buffers), or drops them when `setToNone`.
    func zeroGrad(setToNone: Bool)
    /// The state as named tensors (the live state tensors, not copies: clone to keep a snapshot).
    func stateDictionary() -> [String: Tensor]
    /// Replaces the state with copies of `state`'s tensors. Parameters without entries start
    /// fresh; unknown keys, wrong shapes and incomplete entries throw.
    func loadStateDictionary(_ state: [String: Tensor]) throws
    /// Like `loadStateDictionary`, but the optimizer may keep `state`'s tensors as its state instead of copying
    /// them: the caller hands them over and must not use them afterwards (a checkpoint reader's freshly read
    /// tensors). The default copies.
    func loadStateDictionary(adopting state: [String: Tensor]) throws
}

public extension Optimizer {
    func loadStateDictionary(adopting state: [String: Tensor]) throws { try loadStateDictionary(state) }
}

public extension Optimizer {
    /// One step at the base learning rate.
    func step() { step(learningRate: baseLearningRate) }
    /// Zeros every gradient, keeping the buffers.
    func zeroGrad() { zeroGrad(setToNone: false) }
    /// Number of scalars updated (each shared tensor counted once).
    var parameterCount: Int { parameters.reduce(0) { $0 + $1.count } }
}

/// Errors of optimizer state import.
public enum OptimizerError: Error, CustomStringConvertible, Equatable {
    /// A key that names no parameter or no state of this optimizer.
    case unknownStateKey(String)
    /// A required key is absent (`step`, or one half of a parameter's state).
    case missingStateKey(String)
    /// A state tensor whose shape differs from the parameter's.
    case shapeMismatch(key: String, expected: [Int], actual: [Int])
    /// A step count that is not a non-negative integer.
    case invalidStep(key: String, value: Float)

    public var description: String {
        switch self {
        case .unknownStateKey(let k): return "optimizer state: unknown key '\(k)'"
        case .missingStateKey(let k): return "optimizer state: missing key '\(k)'"
        case .shapeMismatch(let k, let e, let a): return "optimizer state: '\(k)' has shape \(a), expected \(e)"
        case .invalidStep(let k, let v): return "optimizer state: '\(k)' = \(v) is not a non-negative integer step"
        }
    }
}

/// Deduplicated groups plus the stable state key of every parameter (shared by the optimizers).
struct ParameterRegistry {
    let groups: [ParameterGroup]
    let parameters: [Tensor]
    /// State-key prefix per parameter: its name, or `param.<index>` when unnamed.
    let keys: [ObjectIdentifier: String]
    /// Parameter by state-key prefix.
    let byKey: [String: Tensor]

    init(_ groups: [ParameterGroup]) {
        var seen = Set<ObjectIdentifier>()
        var deduplicated: [ParameterGroup] = []
        var parameters: [Tensor] = []
        for var group in groups {
            group.parameters = group.parameters.filter { seen.insert(ObjectIdentifier($0)).inserted }
            parameters += group.parameters
            deduplicated.append(group)
        }
        var keys: [ObjectIdentifier: String] = [:], byKey: [String: Tensor] = [:]
        for (index, p) in parameters.enumerated() {
            let key = p.name.isEmpty ? "param.\(index)" : p.name
            precondition(byKey[key] == nil, "two different parameter tensors are both named '\(key)'")
            keys[ObjectIdentifier(p)] = key
            byKey[key] = p
        }
        self.groups = deduplicated
        self.parameters = parameters
        self.keys = keys
        self.byKey = byKey
    }

    func key(_ p: Tensor) -> String { keys[ObjectIdentifier(p)]! }

    /// Splits `key` into (parameter, state name) at the last `/`; throws for unknown parameters
    /// or state names outside `stateNames`.
    func split(_ key: String, stateNames: Set<String>) throws -> (Tensor, String) {
        guard let slash = key.lastIndex(of: "/") else { throw OptimizerError.unknownStateKey(key) }
        let prefix = String(key[..<slash]), state = String(key[key.index(after: slash)...])
        guard let p = byKey[prefix], stateNames.contains(state) else { throw OptimizerError.unknownStateKey(key) }
        return (p, state)
    }

    func zeroGrad(setToNone: Bool) {
        for p in parameters {
            if setToNone { p.grad = nil } else { p.zeroGrad() }
        }
    }
}

/// Reads a 0-d (or one-element) step tensor as a non-negative integer.
func readStep(_ tensor: Tensor, key: String) throws -> Int {
    guard tensor.count == 1 else { throw OptimizerError.shapeMismatch(key: key, expected: [], actual: tensor.shape) }
    let value = tensor.item()
    guard value >= 0, value == value.rounded(), value < 16_777_216 else { throw OptimizerError.invalidStep(key: key, value: value) }
    return Int(value)
}

/// A copy of `source` in fresh memory on `like`'s backend, after checking it has `like`'s shape.
func stateCopy(_ source: Tensor, like parameter: Tensor, key: String, adopting: Bool = false) throws -> Tensor {
    guard source.shape == parameter.shape else {
        throw OptimizerError.shapeMismatch(key: key, expected: parameter.shape, actual: source.shape)
    }
    // A handed-over tensor on the parameter's backend becomes the state as it is (a detached view).
    if adopting && source.backend === parameter.backend { return source.detached() }
    let t = Tensor(storage: Storage(count: parameter.count, backend: parameter.backend), shape: parameter.shape)
    t.assign(source)   // every element overwritten: no zero fill first
    return t
}

/// Zeros with `parameter`'s shape on `parameter`'s backend.
func zerosLike(_ parameter: Tensor) -> Tensor {
    let t = Tensor(storage: Storage(count: parameter.count, backend: parameter.backend), shape: parameter.shape)
    t.fill(0)
    return t
}
