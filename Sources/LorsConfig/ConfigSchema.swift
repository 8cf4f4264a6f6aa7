// The schema: a tree of sections and typed fields, plus presets and cross-key rules.

/// The set of keys a config may hold, their types, ranges and defaults, plus presets and cross-key rules.
///
/// A schema is a value: `ConfigSchema.lors` (in `Schema+Lors.swift`) is fixed at compile time, and
/// `adding(_:under:)`, `adding(rule:)` and `adding(preset:)` return extended copies. Constructing a schema checks it
/// (unique names, valid defaults, known preset keys) and crashes on a mistake, since a bad schema is a bug.
public struct ConfigSchema: Sendable {
    /// The top-level nodes, in the order they are rendered.
    public let nodes: [SchemaNode]
    /// Presets, applied in order after the config is validated.
    public let presets: [ConfigPreset]
    /// Cross-key rules, run in order after presets.
    public let rules: [ConfigRule]
    /// Keys earlier versions declared and this one does not: configs stored in older checkpoints may hold them.
    /// `ConfigLoader(schema:acceptingRetiredKeys: true)` (stored configs) drops them; everywhere else they are unknown.
    public let retiredKeys: Set<String>
    /// For retired keys that another key replaced: that key (or a short instruction naming it). A config that still
    /// sets such a key gets `ConfigError.Kind.retiredKey` with this text instead of an unknown-key error.
    public let retiredKeyReplacements: [String: String]

    /// Every field by dotted path.
    let fields: [String: FieldSpec]
    /// Every field's dotted path in schema order.
    public let fieldPaths: [String]
    /// Every section's dotted path in schema order.
    public let sectionPaths: [String]

    /// A schema of `nodes`, `presets` and `rules`; crashes if the schema itself is inconsistent.
    public init(_ nodes: [SchemaNode], presets: [ConfigPreset] = [], rules: [ConfigRule] = [], retiredKeys: Set<String> = [],
                retiredKeyReplacements: [String: String] = [:]) {
        self.nodes = nodes
        self.presets = presets
        self.rules = rules
        self.retiredKeys = retiredKeys
        self.retiredKeyReplacements = retiredKeyReplacements
        for key in retiredKeyReplacements.keys {
            precondition(retiredKeys.contains(key), ConfigBug.badSchema(key, "a replacement is given for a key that is not retired"))
        }
        var fields: [String: FieldSpec] = [:]
        var fieldPaths: [String] = []
        var sectionPaths: [String] = []
        Self.index(nodes, prefix: "", fields: &fields, fieldPaths: &fieldPaths, sectionPaths: &sectionPaths)
        self.fields = fields
        self.fieldPaths = fieldPaths
        self.sectionPaths = sectionPaths
        for preset in presets {
            guard let selector = fields[preset.key], case let .choice(allowed) = selector.type else {
                preconditionFailure(ConfigBug.badSchema(preset.key, "a preset key must be an enum field"))
            }
            for (name, expansion) in preset.expansions {
                precondition(allowed.contains(name), ConfigBug.badSchema(preset.key, "unknown preset '\(name)'"))
                for (key, value) in expansion {
                    guard let spec = fields[key] else { preconditionFailure(ConfigBug.unknownKey(key)) }
                    Self.checkDefault(value, of: spec, path: key)
                }
            }
        }
    }

    /// The field at `path` (e.g. `train.batch_size`), or nil if the schema has no such field.
    public func field(at path: String) -> FieldSpec? { fields[path] }

    /// The children of the section at `path` (`""` for the top level), or nil if there is no such section.
    public func children(ofSection path: String) -> [SchemaNode]? {
        var current = nodes
        for component in path.split(separator: ".", omittingEmptySubsequences: false) where !path.isEmpty {
            guard case let .section(_, _, children)? = current.first(where: { $0.name == component }) else {
                return nil
            }
            current = children
        }
        return current
    }

    /// A copy with `newNodes` appended to the section at `sectionPath` (nil for the top level).
    /// Crashes if the section does not exist or a name is already taken.
    public func adding(_ newNodes: [SchemaNode], under sectionPath: String? = nil) -> ConfigSchema {
        let components = sectionPath.map { $0.split(separator: ".").map(String.init) } ?? []
        func insert(into nodes: [SchemaNode], at components: ArraySlice<String>) -> [SchemaNode] {
            guard let head = components.first else { return nodes + newNodes }
            guard let index = nodes.firstIndex(where: { $0.name == head }),
                  case let .section(name, doc, children) = nodes[index] else {
                preconditionFailure(ConfigBug.badSchema(sectionPath ?? "", "no such section to extend"))
            }
            var result = nodes
            result[index] = .section(name: name, doc: doc, children: insert(into: children, at: components.dropFirst()))
            return result
        }
        return ConfigSchema(insert(into: nodes, at: components[...]), presets: presets, rules: rules, retiredKeys: retiredKeys,
                            retiredKeyReplacements: retiredKeyReplacements)
    }

    /// A copy with `rule` appended to the cross-key rules.
    public func adding(rule: ConfigRule) -> ConfigSchema {
        ConfigSchema(nodes, presets: presets, rules: rules + [rule], retiredKeys: retiredKeys, retiredKeyReplacements: retiredKeyReplacements)
    }

    /// A copy with `preset` appended to the presets.
    public func adding(preset: ConfigPreset) -> ConfigSchema {
        ConfigSchema(nodes, presets: presets + [preset], rules: rules, retiredKeys: retiredKeys,
                     retiredKeyReplacements: retiredKeyReplacements)
    }

    /// Every dotted path (fields and sections), for suggestions.
    var allPaths: [String] { sectionPaths + fieldPaths }

    private static func index(_ nodes: [SchemaNode], prefix: String, fields: inout [String: FieldSpec],
                              fieldPaths: inout [String], sectionPaths: inout [String]) {
        var names = Set<String>()
        for node in nodes {
            let path = prefix.isEmpty ? node.name : "\(prefix).\(node.name)"
            precondition(names.insert(node.name).inserted, ConfigBug.badSchema(path, "defined twice"))
            precondition(!node.name.isEmpty && !node.name.contains(".") && !node.name.hasPrefix("_"),
                         ConfigBug.badSchema(path, "a key must be non-empty, without '.', not starting with '_'"))
            switch node {
            case let .field(spec):
                checkDefault(spec.defaultValue, of: spec, path: path)
                fields[path] = spec
                fieldPaths.append(path)
            case let .section(_, _, children):
                sectionPaths.append(path)
                index(children, prefix: path, fields: &fields, fieldPaths: &fieldPaths, sectionPaths: &sectionPaths)
            }
        }
    }

    /// Crashes unless `value` is valid for `spec` (used for defaults and preset values).
    private static func checkDefault(_ value: ConfigValue, of spec: FieldSpec, path: String) {
        if value == .null {
            precondition(spec.nullable, ConfigBug.badSchema(path, "null default on a non-nullable field"))
            return
        }
        if case let .list(element, _) = spec.type {
            if case .list = element { preconditionFailure(ConfigBug.badSchema(path, "lists of lists are not supported")) }
        }
        precondition(spec.type.matchesShape(value), ConfigBug.badSchema(path, "value \(value) is not a \(spec.type)"))
        do {
            try spec.type.checkBounds(value, path: path, at: nil)
        } catch {
            preconditionFailure(ConfigBug.badSchema(path, "\(error)"))
        }
    }
}
