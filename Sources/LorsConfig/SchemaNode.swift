// The building blocks of a schema: typed fields and named sections, with builder functions.

/// One typed key of the schema (a leaf of the tree).
public struct FieldSpec: Sendable {
    /// The key's last path component, e.g. `batch_size`.
    public let name: String
    /// The value's type with its range or allowed values.
    public let type: FieldType
    /// The value a config gets when it does not set the key (`.null` only for nullable fields).
    public let defaultValue: ConfigValue
    /// Whether `null` is a valid value.
    public let nullable: Bool
    /// What the key means; shown to users.
    public let doc: String

    /// A field; prefer the `SchemaNode` builders (`.int`, `.double`, ...).
    public init(name: String, type: FieldType, defaultValue: ConfigValue, nullable: Bool = false, doc: String) {
        self.name = name
        self.type = type
        self.defaultValue = defaultValue
        self.nullable = nullable
        self.doc = doc
    }

    /// The type as shown in messages, with `or null` for nullable fields.
    public var typeDescription: String { nullable ? "\(type) or null" : type.description }
}

/// A node of the schema tree: a typed field or a named section holding more nodes.
public enum SchemaNode: Sendable {
    /// A typed key.
    case field(FieldSpec)
    /// A named group of keys (a YAML map); `children` keep their order in rendered YAML.
    case section(name: String, doc: String, children: [SchemaNode])

    /// The node's key.
    public var name: String {
        switch self {
        case let .field(spec): return spec.name
        case let .section(name, _, _): return name
        }
    }

    /// A section `name` holding `children`.
    public static func section(_ name: String, doc: String = "", _ children: [SchemaNode]) -> SchemaNode {
        .section(name: name, doc: doc, children: children)
    }

    /// An `int` field; `defaultValue` nil means null (requires `nullable`).
    public static func int(_ name: String, _ defaultValue: Int?, _ range: IntRange = .any,
                           nullable: Bool = false, doc: String) -> SchemaNode {
        .field(FieldSpec(name: name, type: .int(range), defaultValue: defaultValue.map(ConfigValue.int) ?? .null,
                         nullable: nullable, doc: doc))
    }

    /// A `float` field; `defaultValue` nil means null (requires `nullable`).
    public static func double(_ name: String, _ defaultValue: Double?, _ range: DoubleRange = .any,
                              nullable: Bool = false, doc: String) -> SchemaNode {
        .field(FieldSpec(name: name, type: .double(range), defaultValue: defaultValue.map(ConfigValue.double) ?? .null,
                         nullable: nullable, doc: doc))
    }

    /// A `bool` field.
    public static func bool(_ name: String, _ defaultValue: Bool, doc: String) -> SchemaNode {
        .field(FieldSpec(name: name, type: .bool, defaultValue: .bool(defaultValue), doc: doc))
    }

    /// A free-text `string` field; `defaultValue` nil means null (requires `nullable`).
    public static func string(_ name: String, _ defaultValue: String?, nullable: Bool = false,
                              doc: String) -> SchemaNode {
        .field(FieldSpec(name: name, type: .string, defaultValue: defaultValue.map(ConfigValue.string) ?? .null,
                         nullable: nullable, doc: doc))
    }

    /// An enum field: one of `allowed`; `defaultValue` nil means null (requires `nullable`).
    public static func choice(_ name: String, _ defaultValue: String?, _ allowed: [String],
                              nullable: Bool = false, doc: String) -> SchemaNode {
        .field(FieldSpec(name: name, type: .choice(allowed),
                         defaultValue: defaultValue.map(ConfigValue.string) ?? .null, nullable: nullable, doc: doc))
    }

    /// A list of ints, each within `element`, with an optional length bound.
    public static func intList(_ name: String, _ defaultValue: [Int], _ element: IntRange = .any,
                               count: ClosedRange<Int>? = nil, doc: String) -> SchemaNode {
        .field(FieldSpec(name: name, type: .list(.int(element), count: count),
                         defaultValue: .list(defaultValue.map(ConfigValue.int)), doc: doc))
    }

    /// A list of floats, each within `element`, with an optional length bound.
    public static func doubleList(_ name: String, _ defaultValue: [Double], _ element: DoubleRange = .any,
                                  count: ClosedRange<Int>? = nil, doc: String) -> SchemaNode {
        .field(FieldSpec(name: name, type: .list(.double(element), count: count),
                         defaultValue: .list(defaultValue.map(ConfigValue.double)), doc: doc))
    }

    /// A list of distinct values from `allowed`, with an optional length bound.
    public static func choiceList(_ name: String, _ defaultValue: [String], _ allowed: [String],
                                  count: ClosedRange<Int>? = nil, doc: String) -> SchemaNode {
        .field(FieldSpec(name: name, type: .list(.choice(allowed), count: count),
                         defaultValue: .list(defaultValue.map(ConfigValue.string)), doc: doc))
    }
}

/// A key whose value fills other keys, e.g. `lr_schedule.preset: 1x` sets `train.epochs: 12` and milestones.
///
/// A filled key that the config also sets explicitly must agree with the preset, else loading fails with
/// `ConfigError.Kind.presetConflict` naming both keys.
public struct ConfigPreset: Sendable {
    /// The dotted path of the enum key that selects the preset.
    public let key: String
    /// For each value of `key`, the keys it fills and their values, in order. Values not listed fill nothing.
    public let expansions: [String: [(key: String, value: ConfigValue)]]

    /// A preset selected by `key`.
    public init(key: String, expansions: [String: [(key: String, value: ConfigValue)]]) {
        self.key = key
        self.expansions = expansions
    }
}

/// A check across several keys, run on the resolved config after presets; throw `ConfigError` with `.inconsistent`.
public struct ConfigRule: Sendable {
    /// A short name for the rule (for readers of the schema).
    public let name: String
    /// The check; throws a `ConfigError` naming the keys involved.
    public let check: @Sendable (Config) throws -> Void

    /// A rule named `name`.
    public init(_ name: String, check: @escaping @Sendable (Config) throws -> Void) {
        self.name = name
        self.check = check
    }
}
