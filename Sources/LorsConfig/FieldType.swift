// Field types of the schema: ranges, enums, lists, and the checks a typed value must pass.

/// Inclusive bounds for an `int` field or list element; nil means unbounded on that side.
public struct IntRange: Equatable, Sendable, CustomStringConvertible {
    /// Smallest allowed value, or nil.
    public var min: Int?
    /// Largest allowed value, or nil.
    public var max: Int?

    /// Bounds `min ... max`, each optional.
    public init(min: Int? = nil, max: Int? = nil) {
        self.min = min
        self.max = max
    }

    /// Any integer.
    public static let any = IntRange()
    /// `>= 0`.
    public static let nonNegative = IntRange(min: 0)
    /// `>= 1`.
    public static let positive = IntRange(min: 1)
    /// `>= lower`.
    public static func atLeast(_ lower: Int) -> IntRange { IntRange(min: lower) }
    /// `lower ... upper`.
    public static func between(_ lower: Int, _ upper: Int) -> IntRange { IntRange(min: lower, max: upper) }

    /// Whether `value` lies within the bounds.
    public func contains(_ value: Int) -> Bool {
        (min.map { value >= $0 } ?? true) && (max.map { value <= $0 } ?? true)
    }

    /// E.g. `>= 0`, `<= 4`, `in [0, 4]`, `any`.
    public var description: String {
        switch (min, max) {
        case let (lower?, upper?): return "in [\(lower), \(upper)]"
        case let (lower?, nil): return ">= \(lower)"
        case let (nil, upper?): return "<= \(upper)"
        case (nil, nil): return "any"
        }
    }
}

/// Bounds for a `float` field or list element, each side optional and inclusive or exclusive.
public struct DoubleRange: Equatable, Sendable, CustomStringConvertible {
    /// Lower bound and whether it is allowed itself; nil means unbounded.
    public var lower: (value: Double, inclusive: Bool)?
    /// Upper bound and whether it is allowed itself; nil means unbounded.
    public var upper: (value: Double, inclusive: Bool)?

    /// Bounds with the given sides.
    public init(lower: (value: Double, inclusive: Bool)? = nil, upper: (value: Double, inclusive: Bool)? = nil) {
        self.lower = lower
        self.upper = upper
    }

    /// Any finite number.
    public static let any = DoubleRange()
    /// `>= lower`.
    public static func atLeast(_ lower: Double) -> DoubleRange { DoubleRange(lower: (lower, true)) }
    /// `> lower`.
    public static func greaterThan(_ lower: Double) -> DoubleRange { DoubleRange(lower: (lower, false)) }
    /// `[lower, upper]`.
    public static func closed(_ lower: Double, _ upper: Double) -> DoubleRange {
        DoubleRange(lower: (lower, true), upper: (upper, true))
    }
    /// `[lower, upper)`.
    public static func halfOpen(_ lower: Double, _ upper: Double) -> DoubleRange {
        DoubleRange(lower: (lower, true), upper: (upper, false))
    }

    /// Whether `value` lies within the bounds.
    public func contains(_ value: Double) -> Bool {
        let aboveLower = lower.map { $0.inclusive ? value >= $0.value : value > $0.value } ?? true
        let belowUpper = upper.map { $0.inclusive ? value <= $0.value : value < $0.value } ?? true
        return aboveLower && belowUpper
    }

    /// E.g. `>= 0`, `> 0`, `in [0, 1)`, `any`.
    public var description: String {
        func text(_ value: Double) -> String { value == value.rounded() && abs(value) < 1e15 ? String(Int(value)) : String(value) }
        switch (lower, upper) {
        case let (low?, high?):
            return "in \(low.inclusive ? "[" : "(")\(text(low.value)), \(text(high.value))\(high.inclusive ? "]" : ")")"
        case let (low?, nil): return "\(low.inclusive ? ">=" : ">") \(text(low.value))"
        case let (nil, high?): return "\(high.inclusive ? "<=" : "<") \(text(high.value))"
        case (nil, nil): return "any"
        }
    }

    /// Equal bounds on both sides.
    public static func == (lhs: DoubleRange, rhs: DoubleRange) -> Bool {
        lhs.lower?.value == rhs.lower?.value && lhs.lower?.inclusive == rhs.lower?.inclusive
            && lhs.upper?.value == rhs.upper?.value && lhs.upper?.inclusive == rhs.upper?.inclusive
    }
}

/// The type of a config field. Lists hold scalars of one element type.
public indirect enum FieldType: Equatable, Sendable, CustomStringConvertible {
    /// An integer within `range`.
    case int(IntRange)
    /// A finite floating-point number within `range` (an integer literal is accepted).
    case double(DoubleRange)
    /// `true` or `false` (also `yes`/`no`/`on`/`off`).
    case bool
    /// Any scalar, kept as text.
    case string
    /// One of the listed strings.
    case choice([String])
    /// A list of `element` (a scalar type), with an optional bound on its length; enum lists reject duplicates.
    case list(FieldType, count: ClosedRange<Int>?)

    /// The type as shown in messages, e.g. `int >= 1`, `float in [0, 1)`, `one of [vit, adamixer]`, `list of int`.
    public var description: String {
        switch self {
        case let .int(range): return range == .any ? "int" : "int \(range)"
        case let .double(range): return range == .any ? "float" : "float \(range)"
        case .bool: return "bool (true or false)"
        case .string: return "string"
        case let .choice(allowed): return "one of [\(allowed.joined(separator: ", "))]"
        case let .list(element, count):
            let length = count.map { " with \(Self.lengthText($0)) elements" } ?? ""
            return "list of \(element)\(length)"
        }
    }

    /// The short name used in accessor crash messages: `int`, `float`, `bool`, `string`, `enum`, `list`.
    var kindName: String {
        switch self {
        case .int: return "int"
        case .double: return "float"
        case .bool: return "bool"
        case .string: return "string"
        case .choice: return "enum"
        case .list(let element, _): return "list of \(element.kindName)"
        }
    }

    /// `2`, `1...4` as `1 to 4`, `at least 1`.
    static func lengthText(_ count: ClosedRange<Int>) -> String {
        if count.lowerBound == count.upperBound { return "exactly \(count.lowerBound)" }
        if count.upperBound == Int.max { return "at least \(count.lowerBound)" }
        return "\(count.lowerBound) to \(count.upperBound)"
    }

    /// Whether `value` has this type's shape (ignores ranges); `.null` never matches.
    func matchesShape(_ value: ConfigValue) -> Bool {
        switch (self, value) {
        case (.int, .int), (.double, .double), (.bool, .bool), (.string, .string), (.choice, .string): return true
        case let (.list(element, _), .list(values)): return values.allSatisfy(element.matchesShape)
        default: return false
        }
    }

    /// Checks ranges, enum membership, list length and duplicates of a value of the right shape.
    func checkBounds(_ value: ConfigValue, path: String, at location: String?) throws {
        switch (self, value) {
        case let (.int(range), .int(number)) where !range.contains(number):
            throw ConfigError(.outOfRange(path: path, value: String(number), allowed: range.description), at: location)
        case let (.double(range), .double(number)) where !range.contains(number):
            throw ConfigError(.outOfRange(path: path, value: ConfigValue.yamlFloat(number), allowed: range.description),
                              at: location)
        case let (.choice(allowed), .string(text)) where !allowed.contains(text):
            throw ConfigError(.notInEnum(path: path, value: text, allowed: allowed), at: location)
        case let (.list(element, count), .list(values)):
            if let count, !count.contains(values.count) {
                throw ConfigError(.wrongLength(path: path, count: values.count, allowed: Self.lengthText(count)),
                                  at: location)
            }
            for (index, item) in values.enumerated() {
                try element.checkBounds(item, path: "\(path)[\(index)]", at: location)
            }
            if case .choice = element {
                var seen = Set<String>()
                for case let .string(text) in values where !seen.insert(text).inserted {
                    throw ConfigError(.duplicateElement(path: path, value: text), at: location)
                }
            }
        default:
            return
        }
    }
}
