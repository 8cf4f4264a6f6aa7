// Strict validation: turns the merged raw tree into typed values, filling defaults; unknown keys get a suggestion.

/// Parsing of scalar text per schema type (shared by YAML files and `--set` overrides).
enum ScalarParser {
    /// `true`/`false` (also `yes`/`no`/`on`/`off`), any case.
    static func bool(_ text: String) -> Bool? {
        switch text.lowercased() {
        case "true", "yes", "on": return true
        case "false", "no", "off": return false
        default: return nil
        }
    }

    /// A decimal integer, optionally signed.
    static func int(_ text: String) -> Int? { Int(text) }

    /// A finite decimal number (`1e-3`, `0.5`, `25`).
    static func double(_ text: String) -> Double? {
        guard let value = Double(text), value.isFinite,
              text.allSatisfy({ $0.isASCII && ($0.isNumber || "+-.eE".contains($0)) }) else { return nil }
        return value
    }
}

/// Checks a merged raw tree against a schema and produces typed values for every field.
struct Validator {
    let schema: ConfigSchema
    /// Drop the schema's retired keys instead of rejecting them (stored configs of older checkpoints).
    var acceptingRetiredKeys = false

    /// The typed value of every schema field (defaults where unset) and the set of fields the tree sets.
    func resolve(_ root: RawNode) throws -> (values: [String: ConfigValue], explicit: Set<String>) {
        var values: [String: ConfigValue] = [:]
        var explicit = Set<String>()
        try walk(schema.nodes, raw: root, prefix: "", values: &values, explicit: &explicit)
        return (values, explicit)
    }

    private func walk(_ nodes: [SchemaNode], raw: RawNode?, prefix: String,
                      values: inout [String: ConfigValue], explicit: inout Set<String>) throws {
        var entries: [RawEntry] = []
        if let raw, !raw.isNull {
            guard let mapEntries = raw.entries else {
                throw ConfigError(.notAMap(path: prefix, found: raw.foundText), at: raw.origin)
            }
            entries = mapEntries
        }
        for entry in entries where !nodes.contains(where: { $0.name == entry.key }) {
            let path = prefix.isEmpty ? entry.key : "\(prefix).\(entry.key)"
            if acceptingRetiredKeys && schema.retiredKeys.contains(path) { continue }
            if let replacement = schema.retiredKeyReplacements[path] {
                throw ConfigError(.retiredKey(path: path, replacement: replacement), at: entry.origin)
            }
            throw ConfigError(.unknownKey(path: path, suggestion: suggestion(for: path)), at: entry.origin)
        }
        for node in nodes {
            let path = prefix.isEmpty ? node.name : "\(prefix).\(node.name)"
            var entry = entries.first { $0.key == node.name }
            switch node {
            case let .section(_, _, children):
                // A retired scalar key whose name is now a section (`backbone: resnet50` became `backbone: {depth: 50}`).
                if let value = entry?.value, !value.isNull, value.entries == nil, schema.retiredKeys.contains(path) {
                    if acceptingRetiredKeys {
                        entry = nil
                    } else if let replacement = schema.retiredKeyReplacements[path] {
                        throw ConfigError(.retiredKey(path: path, replacement: replacement), at: value.origin)
                    }
                }
                try walk(children, raw: entry?.value, prefix: path, values: &values, explicit: &explicit)
            case let .field(spec):
                guard let entry else {
                    values[path] = spec.defaultValue
                    continue
                }
                values[path] = try value(of: entry.value, spec: spec, path: path)
                explicit.insert(path)
            }
        }
    }

    /// The typed value of `raw` for the field `spec` at `path`, with ranges checked.
    func value(of raw: RawNode, spec: FieldSpec, path: String) throws -> ConfigValue {
        if raw.isNull {
            guard spec.nullable else {
                throw ConfigError(.wrongType(path: path, expected: spec.typeDescription, found: "null"), at: raw.origin)
            }
            return .null
        }
        let value = try parse(raw, as: spec.type, path: path, expected: spec.typeDescription)
        try spec.type.checkBounds(value, path: path, at: raw.origin)
        return value
    }

    private func parse(_ raw: RawNode, as type: FieldType, path: String, expected: String) throws -> ConfigValue {
        let wrongType = ConfigError(.wrongType(path: path, expected: expected, found: raw.foundText), at: raw.origin)
        if case let .list(element, _) = type {
            guard case let .list(items) = raw.content else { throw wrongType }
            return .list(try items.enumerated().map { index, item in
                try parse(item, as: element, path: "\(path)[\(index)]", expected: element.description)
            })
        }
        guard case let .scalar(text, quoted) = raw.content, !raw.isNull else { throw wrongType }
        switch type {
        case .int:
            guard !quoted, let number = ScalarParser.int(text) else { throw wrongType }
            return .int(number)
        case .double:
            guard !quoted, let number = ScalarParser.double(text) else { throw wrongType }
            return .double(number)
        case .bool:
            guard !quoted, let flag = ScalarParser.bool(text) else { throw wrongType }
            return .bool(flag)
        case .string, .choice:
            return .string(text)
        case .list:
            throw wrongType
        }
    }

    /// The known dotted path closest to the unknown `path`: one with the same last component, else one within a
    /// small edit distance. Nil if nothing is close.
    func suggestion(for path: String) -> String? {
        let leaf = path.split(separator: ".").last.map(String.init) ?? path
        let candidates = schema.allPaths
        let sameLeaf = candidates.filter { ($0.split(separator: ".").last.map(String.init) ?? $0) == leaf }
        if let best = sameLeaf.min(by: { editDistance($0, path) < editDistance($1, path) }) { return best }
        let scored = candidates.map { ($0, editDistance($0, path)) }
        guard let best = scored.min(by: { $0.1 < $1.1 }) else { return nil }
        return best.1 <= max(2, path.count / 4) ? best.0 : nil
    }
}

/// Levenshtein distance between `a` and `b` (characters).
func editDistance(_ a: String, _ b: String) -> Int {
    let a = Array(a), b = Array(b)
    if a.isEmpty { return b.count }
    if b.isEmpty { return a.count }
    var previous = Array(0...b.count)
    var current = [Int](repeating: 0, count: b.count + 1)
    for i in 1...a.count {
        current[0] = i
        for j in 1...b.count {
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
        }
        swap(&previous, &current)
    }
    return previous[b.count]
}
