/// A JSON value: the one writer of every JSON text lors prints or stores (`metrics.jsonl`, `lors eval --json`,
/// `lors inspect --json`, `lors params --json`, the `--json` output of `lors-bench`, a checkpoint's `/meta` `extra`
/// and the safetensors header), so all of them format alike.
///
/// The text (`text(_:)`):
/// - Objects keep their keys in insertion order (the order the pairs were given or first set; see `JSONObject`).
///   A Swift `Dictionary` has no order of its own: `JSONObject(sortingKeysOf:)` takes its keys sorted.
/// - `.int` is written as decimal digits (`3`). `.double` is written as the shortest decimal that reads back to the
///   same `Double` (Swift's `description`: `0.1`, `3.0`, `1e-05`, `1e+16`, `-0.0`), always with a `.` or an exponent,
///   so a double never reads back as an integer and an integer never gains a fraction.
/// - NaN and ±infinity have no JSON form (RFC 8259 §6): a non-finite `.double` is written as `null`, in every output.
///   Readers see a missing number, never a string or a non-standard token such as `NaN`.
/// - Strings are escaped per RFC 8259 §7: `"` and `\` with a backslash, the control characters U+0000–U+001F as
///   `\b`, `\f`, `\n`, `\r`, `\t` or `\u00XX` (lower-case hex); everything else, `/` and non-ASCII characters
///   included, is written as is (UTF-8).
/// - `.compact` has no whitespace at all (`{"a":1,"b":[1,2]}`), one line (the layout of JSON lines, which scripts
///   grep as `"key":value`); `.indented` puts each member of an object on its own line, indented by two spaces per
///   level, as `"key": value`, and an array of scalars on one line (`[3, 16]`), other arrays one element a line.
public enum JSONValue: Sendable, Equatable {
    case null
    case bool(Bool)
    case int(Int)
    case double(Double)
    case string(String)
    case array([JSONValue])
    case object(JSONObject)

    /// How `text(_:)` lays the value out.
    public enum Layout: Sendable {
        /// One line, no whitespace.
        case compact
        /// Two-space indentation, one object member a line.
        case indented
    }

    /// The JSON text of this value.
    public func text(_ layout: Layout = .compact) -> String {
        var out = ""
        write(to: &out, layout: layout, indent: 0)
        return out
    }

    /// The JSON text of a number: shortest round-trip digits, `null` when not finite.
    public static func number(_ value: Double) -> String { value.isFinite ? value.description : "null" }

    /// `text` as a JSON string literal (quoted and escaped per RFC 8259 §7).
    public static func quoted(_ text: String) -> String {
        var out = ""
        appendQuoted(text, to: &out)
        return out
    }

    private static func appendQuoted(_ text: String, to out: inout String) {
        out.reserveCapacity(out.utf8.count + text.utf8.count + 2)
        out.append("\"")
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out.append("\\\"")
            case "\\": out.append("\\\\")
            case "\n": out.append("\\n")
            case "\r": out.append("\\r")
            case "\t": out.append("\\t")
            case "\u{08}": out.append("\\b")
            case "\u{0C}": out.append("\\f")
            case _ where scalar.value < 0x20:
                let digits = Array("0123456789abcdef")
                out.append("\\u00")
                out.append(digits[Int(scalar.value >> 4)])
                out.append(digits[Int(scalar.value & 0xF)])
            default:
                out.unicodeScalars.append(scalar)
            }
        }
        out.append("\"")
    }

    private var isScalar: Bool {
        switch self {
        case .array, .object: return false
        default: return true
        }
    }

    fileprivate func write(to out: inout String, layout: Layout, indent: Int) {
        switch self {
        case .null: out.append("null")
        case .bool(let value): out.append(value ? "true" : "false")
        case .int(let value): out.append(String(value))
        case .double(let value): out.append(JSONValue.number(value))
        case .string(let value): JSONValue.appendQuoted(value, to: &out)
        case .array(let elements):
            if elements.isEmpty { out.append("[]"); return }
            if layout == .compact || elements.allSatisfy(\.isScalar) {
                out.append("[")
                for (i, element) in elements.enumerated() {
                    if i > 0 { out.append(layout == .compact ? "," : ", ") }
                    element.write(to: &out, layout: layout, indent: indent)
                }
                out.append("]")
                return
            }
            let inner = String(repeating: "  ", count: indent + 1)
            out.append("[\n")
            for (i, element) in elements.enumerated() {
                out.append(inner)
                element.write(to: &out, layout: layout, indent: indent + 1)
                out.append(i + 1 < elements.count ? ",\n" : "\n")
            }
            out.append(String(repeating: "  ", count: indent) + "]")
        case .object(let object):
            if object.isEmpty { out.append("{}"); return }
            if layout == .compact {
                out.append("{")
                for (i, field) in object.fields.enumerated() {
                    if i > 0 { out.append(",") }
                    JSONValue.appendQuoted(field.key, to: &out)
                    out.append(":")
                    field.value.write(to: &out, layout: layout, indent: indent)
                }
                out.append("}")
                return
            }
            let inner = String(repeating: "  ", count: indent + 1)
            out.append("{\n")
            for (i, field) in object.fields.enumerated() {
                out.append(inner)
                JSONValue.appendQuoted(field.key, to: &out)
                out.append(": ")
                field.value.write(to: &out, layout: layout, indent: indent + 1)
                out.append(i + 1 < object.count ? ",\n" : "\n")
            }
            out.append(String(repeating: "  ", count: indent) + "}")
        }
    }
}

/// A JSON object whose keys keep their insertion order: a key is placed where it was first given or set; setting
/// it again replaces its value in place; setting it to nil removes it. Equal when the same keys map to equal values
/// in the same order.
public struct JSONObject: Sendable, Equatable, ExpressibleByDictionaryLiteral {
    /// The members in order.
    public private(set) var fields: [(key: String, value: JSONValue)] = []
    private var positions: [String: Int] = [:]

    public init() {}

    /// The members in the given order (a repeated key keeps its first position and its last value).
    public init(_ fields: [(String, JSONValue)]) {
        for (key, value) in fields { self[key] = value }
    }

    public init(dictionaryLiteral elements: (String, JSONValue)...) { self.init(elements) }

    /// A dictionary's members with the keys in ascending order (a dictionary has no order of its own).
    public init(sortingKeysOf dictionary: [String: JSONValue]) {
        self.init(dictionary.sorted { $0.key < $1.key }.map { ($0.key, $0.value) })
    }

    public var keys: [String] { fields.map(\.key) }
    public var count: Int { fields.count }
    public var isEmpty: Bool { fields.isEmpty }

    public subscript(key: String) -> JSONValue? {
        get { positions[key].map { fields[$0].value } }
        set {
            if let position = positions[key] {
                if let newValue {
                    fields[position].value = newValue
                } else {
                    fields.remove(at: position)
                    positions = Dictionary(uniqueKeysWithValues: fields.enumerated().map { ($1.key, $0) })
                }
            } else if let newValue {
                positions[key] = fields.count
                fields.append((key, newValue))
            }
        }
    }

    /// The JSON text of this object (see `JSONValue`).
    public func text(_ layout: JSONValue.Layout = .compact) -> String { JSONValue.object(self).text(layout) }

    public static func == (lhs: JSONObject, rhs: JSONObject) -> Bool {
        lhs.fields.count == rhs.fields.count && zip(lhs.fields, rhs.fields).allSatisfy { $0.key == $1.key && $0.value == $1.value }
    }
}

extension JSONValue: ExpressibleByStringLiteral, ExpressibleByStringInterpolation, ExpressibleByIntegerLiteral,
                     ExpressibleByFloatLiteral, ExpressibleByBooleanLiteral, ExpressibleByArrayLiteral,
                     ExpressibleByDictionaryLiteral {
    public init(stringLiteral value: String) { self = .string(value) }
    public init(integerLiteral value: Int) { self = .int(value) }
    public init(floatLiteral value: Double) { self = .double(value) }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(arrayLiteral elements: JSONValue...) { self = .array(elements) }
    public init(dictionaryLiteral elements: (String, JSONValue)...) { self = .object(JSONObject(elements)) }
}
