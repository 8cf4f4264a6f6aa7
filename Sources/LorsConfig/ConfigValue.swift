// A typed, validated config value, and its YAML spelling.

/// One resolved value of a config field.
///
/// Lists only hold scalars. `double` values are always finite.
public enum ConfigValue: Equatable, Sendable, CustomStringConvertible {
    /// An unset nullable field (`null` in YAML).
    case null
    /// A `bool` field.
    case bool(Bool)
    /// An `int` field.
    case int(Int)
    /// A `float` field (finite).
    case double(Double)
    /// A `string` or `enum` field.
    case string(String)
    /// A list field; the elements are scalars of one type.
    case list([ConfigValue])

    /// The value as YAML flow text, e.g. `12`, `0.001`, `vit`, `"1x"`, `[1, 2, 3]`, `null`.
    public var description: String { yamlText }

    /// The value as YAML flow text that reads back to the same value (and that PyYAML reads as the same type).
    var yamlText: String {
        switch self {
        case .null: return "null"
        case let .bool(value): return value ? "true" : "false"
        case let .int(value): return String(value)
        case let .double(value): return Self.yamlFloat(value)
        case let .string(value): return Self.yamlString(value)
        case let .list(values): return "[" + values.map(\.yamlText).joined(separator: ", ") + "]"
        }
    }

    /// Shortest round-tripping spelling with a '.' in the mantissa (`1.0e-08`, `25.0`), as YAML 1.1 readers expect.
    static func yamlFloat(_ value: Double) -> String {
        let text = String(value)
        guard !text.contains(".") else { return text }
        if let exponent = text.firstIndex(where: { $0 == "e" || $0 == "E" }) {
            return text[..<exponent] + ".0" + text[exponent...]
        }
        return text + ".0"
    }

    /// Words that YAML readers turn into booleans or null when written plain.
    private static let reservedWords: Set<String> = [
        "true", "false", "yes", "no", "on", "off", "y", "n", "null", "~", "",
    ]

    /// Plain when unambiguous (identifier-like, not starting with a digit, not a reserved word), else double-quoted.
    static func yamlString(_ value: String) -> String {
        let allowedFirst = value.first.map { $0.isASCII && ($0.isLetter || $0 == "_" || $0 == "/") } ?? false
        let allowedRest = value.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "_./-".contains($0)) }
        if allowedFirst && allowedRest && !reservedWords.contains(value.lowercased()) {
            return value
        }
        var quoted = "\""
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\"": quoted += "\\\""
            case "\\": quoted += "\\\\"
            case "\n": quoted += "\\n"
            case "\t": quoted += "\\t"
            case "\r": quoted += "\\r"
            default:
                if scalar.value < 0x20 || scalar.value == 0x7F {
                    quoted += "\\x" + (scalar.value < 0x10 ? "0" : "") + String(scalar.value, radix: 16)
                } else {
                    quoted.unicodeScalars.append(scalar)
                }
            }
        }
        return quoted + "\""
    }
}
