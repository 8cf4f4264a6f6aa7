import LorsTensor

/// A set of parameters sharing a learning rate and a weight decay (PyTorch's `param_groups`).
///
/// The schedule passes the *scheduled* learning rate to `Optimizer.step(learningRate:)` every
/// step; a group turns it into its own rate with `learningRate` (see `LearningRate`).
public struct ParameterGroup {
    /// How a group's learning rate follows the schedule.
    public enum LearningRate: Sendable, Equatable {
        /// `scheduled × m` (mmcv's `lr_mult`).
        case multiplier(Double)
        /// `value` at the optimizer's base learning rate, scaled by the same schedule factor:
        /// `value × scheduled / base` (what mmcv's schedulers do to a group with its own `lr`).
        case absolute(Double)
    }

    /// Name for logs and errors ("decay", "no_decay", ...).
    public var name: String
    /// The tensors this group updates (leaves with `.grad`).
    public var parameters: [Tensor]
    /// Learning rate relative to the schedule.
    public var learningRate: LearningRate
    /// Weight decay of this group; `nil` uses the optimizer's default.
    public var weightDecay: Double?

    public init(name: String = "default", parameters: [Tensor], learningRate: LearningRate = .multiplier(1),
                weightDecay: Double? = nil) {
        self.name = name
        self.parameters = parameters
        self.learningRate = learningRate
        self.weightDecay = weightDecay
    }

    /// This group's learning rate when the schedule gives `scheduled` and the optimizer's base rate is `base`.
    public func effectiveLearningRate(scheduled: Double, base: Double) -> Double {
        switch learningRate {
        case .multiplier(let m): return scheduled * m
        case .absolute(let value):
            precondition(base > 0, "group '\(name)': an absolute learning rate needs a positive base learning rate, got \(base)")
            return value * (scheduled / base)
        }
    }
}

/// A rule sending matching parameters to a group with its own learning rate and weight decay
/// (mmcv's `paramwise_cfg`, timm's no-decay list).
///
/// Patterns are globs where `*` matches any run of characters. A pattern without a dot is
/// matched against each dotted component of the name (`bias` matches `blocks.0.attn.qkv.bias`
/// but not `blocks.0.attn.private_bias.3`; `*norm*` matches `blocks.0.norm1.weight`); a pattern
/// with a dot is matched against the whole name (`decoder.*.offsets.weight`).
public struct ParameterGroupRule: Sendable {
    /// Name of the group this rule produces.
    public var name: String
    /// Name globs (see the type's documentation).
    public var patterns: [String]
    /// Also match every parameter of rank ≤ 1 (timm's `param.ndim <= 1` no-decay rule).
    public var matchesOneDimensional: Bool
    /// Learning rate of the group.
    public var learningRate: ParameterGroup.LearningRate
    /// Weight decay of the group (`nil`: optimizer default).
    public var weightDecay: Double?

    public init(name: String, patterns: [String], matchesOneDimensional: Bool = false,
                learningRate: ParameterGroup.LearningRate = .multiplier(1), weightDecay: Double?) {
        self.name = name
        self.patterns = patterns
        self.matchesOneDimensional = matchesOneDimensional
        self.learningRate = learningRate
        self.weightDecay = weightDecay
    }

    /// Norms, biases, embeddings, the class token and the positional embedding (DeiT's no-decay set).
    public static let defaultNoDecayPatterns = ["*norm*", "bias", "*embedding*", "cls_token", "pos_embed"]

    /// A weight-decay-0 group named `no_decay` for `patterns`.
    public static func noDecay(patterns: [String] = defaultNoDecayPatterns, matchesOneDimensional: Bool = false) -> ParameterGroupRule {
        ParameterGroupRule(name: "no_decay", patterns: patterns, matchesOneDimensional: matchesOneDimensional, weightDecay: 0)
    }

    /// Whether a parameter called `name` with `shape` belongs to this rule's group.
    public func matches(name: String, shape: [Int]) -> Bool {
        if matchesOneDimensional && shape.count <= 1 { return true }
        let components = name.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        for pattern in patterns {
            if pattern.contains(".") {
                if globMatch(pattern, name) { return true }
            } else if components.contains(where: { globMatch(pattern, $0) }) {
                return true
            }
        }
        return false
    }
}

public extension ParameterGroup {
    /// Splits named parameters into groups: each parameter goes to the first rule it matches,
    /// the rest to a group called `defaultName` (optimizer defaults). Groups come in rule order,
    /// the default group first; empty groups are dropped; a tensor listed twice (a shared
    /// weight) is kept once, under its first name. Parameter order inside a group is input order.
    static func grouped(_ named: [(name: String, parameter: Tensor)], rules: [ParameterGroupRule],
                        defaultName: String = "decay") -> [ParameterGroup] {
        var defaultGroup = ParameterGroup(name: defaultName, parameters: [])
        var ruleGroups = rules.map { ParameterGroup(name: $0.name, parameters: [], learningRate: $0.learningRate, weightDecay: $0.weightDecay) }
        var seen = Set<ObjectIdentifier>()
        for (name, parameter) in named where seen.insert(ObjectIdentifier(parameter)).inserted {
            if let index = rules.firstIndex(where: { $0.matches(name: name, shape: parameter.shape) }) {
                ruleGroups[index].parameters.append(parameter)
            } else {
                defaultGroup.parameters.append(parameter)
            }
        }
        return ([defaultGroup] + ruleGroups).filter { !$0.parameters.isEmpty }
    }
}

/// Glob match with `*` (any run, possibly empty); every other character is literal.
func globMatch(_ pattern: String, _ text: String) -> Bool {
    let p = Array(pattern.utf8), t = Array(text.utf8)
    var pi = 0, ti = 0, star = -1, mark = 0
    let asterisk = UInt8(ascii: "*")
    while ti < t.count {
        if pi < p.count && p[pi] == asterisk {
            star = pi; mark = ti; pi += 1
        } else if pi < p.count && p[pi] == t[ti] {
            pi += 1; ti += 1
        } else if star >= 0 {
            pi = star + 1; mark += 1; ti = mark
        } else {
            return false
        }
    }
    while pi < p.count && p[pi] == asterisk { pi += 1 }
    return pi == p.count
}
