// The resolved, validated config with typed accessors by dotted path.

/// A fully resolved config: every schema field has a valid value (from a file, an override, a preset or the default).
///
///     let config = try ConfigLoader(schema: .lors).load(file: "configs/x.yaml", overrides: ["train.batch_size=32"])
///     let batch = config.int("train.batch_size")
///
/// Accessors crash when the key is not in the schema or has another type: that is a bug in the calling code, not a
/// config mistake (config mistakes are caught by `ConfigLoader`).
public struct Config: Sendable {
    /// The schema the config was validated against.
    public let schema: ConfigSchema
    /// Every field's value by dotted path.
    public let values: [String: ConfigValue]
    /// The fields set by a file or an override (the others hold defaults or preset values).
    public let explicitKeys: Set<String>
    /// The file the config was loaded from (as given to the loader), or the source name of a YAML string.
    public let sourceFile: String
    /// Every file read, in merge order (bases first, `sourceFile` last); empty for a string without `_base_`.
    public let includedFiles: [String]

    /// A config from already validated values; `ConfigLoader` is the usual way to get one.
    init(schema: ConfigSchema, values: [String: ConfigValue], explicitKeys: Set<String>,
         sourceFile: String, includedFiles: [String]) {
        self.schema = schema
        self.values = values
        self.explicitKeys = explicitKeys
        self.sourceFile = sourceFile
        self.includedFiles = includedFiles
    }

    /// The value at `path`; crashes if `path` is not a field of the schema.
    public func value(_ path: String) -> ConfigValue {
        guard let value = values[path] else { preconditionFailure(ConfigBug.unknownKey(path)) }
        return value
    }

    /// Whether the file(s) or overrides set `path` explicitly (rather than leaving the default).
    public func isExplicit(_ path: String) -> Bool { explicitKeys.contains(path) }

    /// The `int` at `path`; crashes if it is not an int field or is null (use `optionalInt`).
    public func int(_ path: String) -> Int {
        guard let value = optionalInt(path) else { preconditionFailure(ConfigBug.nullValue(path)) }
        return value
    }

    /// The `int` at `path`, or nil when null; crashes if it is not an int field.
    public func optionalInt(_ path: String) -> Int? {
        switch typed(path, wanted: "int", matches: { if case .int = $0 { return true } else { return false } }) {
        case let .int(number): return number
        default: return nil
        }
    }

    /// The `float` at `path`; crashes if it is not a float field or is null (use `optionalDouble`).
    public func double(_ path: String) -> Double {
        guard let value = optionalDouble(path) else { preconditionFailure(ConfigBug.nullValue(path)) }
        return value
    }

    /// The `float` at `path`, or nil when null; crashes if it is not a float field.
    public func optionalDouble(_ path: String) -> Double? {
        switch typed(path, wanted: "float", matches: { if case .double = $0 { return true } else { return false } }) {
        case let .double(number): return number
        default: return nil
        }
    }

    /// The `bool` at `path`; crashes if it is not a bool field.
    public func bool(_ path: String) -> Bool {
        guard case let .bool(flag) = typed(path, wanted: "bool", matches: { $0 == .bool }) else {
            preconditionFailure(ConfigBug.nullValue(path))
        }
        return flag
    }

    /// The `string` or `enum` at `path`; crashes if it is neither or is null (use `optionalString`).
    public func string(_ path: String) -> String {
        guard let value = optionalString(path) else { preconditionFailure(ConfigBug.nullValue(path)) }
        return value
    }

    /// The `string` or `enum` at `path`, or nil when null; crashes if it is neither.
    public func optionalString(_ path: String) -> String? {
        let isText: (FieldType) -> Bool = {
            switch $0 {
            case .string, .choice: return true
            default: return false
            }
        }
        guard case let .string(text) = typed(path, wanted: "string", matches: isText) else { return nil }
        return text
    }

    /// The list of ints at `path`; crashes if it is not a list-of-int field.
    public func intList(_ path: String) -> [Int] {
        list(path, wanted: "list of int").map { if case let .int(number) = $0 { return number } else { return 0 } }
    }

    /// The list of floats at `path`; crashes if it is not a list-of-float field.
    public func doubleList(_ path: String) -> [Double] {
        list(path, wanted: "list of float").map { if case let .double(number) = $0 { return number } else { return 0 } }
    }

    /// The list of strings (enum values) at `path`; crashes if it is not a list-of-enum or list-of-string field.
    public func stringList(_ path: String) -> [String] {
        list(path, wanted: "list of string").map { if case let .string(text) = $0 { return text } else { return "" } }
    }

    private func list(_ path: String, wanted: String) -> [ConfigValue] {
        let elementMatches: (FieldType) -> Bool = { type in
            guard case let .list(element, _) = type else { return false }
            switch (wanted, element) {
            case ("list of int", .int), ("list of float", .double), ("list of string", .string),
                 ("list of string", .choice): return true
            default: return false
            }
        }
        guard case let .list(items) = typed(path, wanted: wanted, matches: elementMatches) else { return [] }
        return items
    }

    private func typed(_ path: String, wanted: String, matches: (FieldType) -> Bool) -> ConfigValue {
        guard let spec = schema.field(at: path) else { preconditionFailure(ConfigBug.unknownKey(path)) }
        precondition(matches(spec.type), ConfigBug.wrongAccessor(path, wanted: wanted, type: spec.type.kindName))
        return value(path)
    }
}
