// Loading: read files, follow `_base_` (with cycle detection), merge, apply `--set`, validate, presets, rules.

import Foundation

/// Loads configs from YAML files or strings and validates them against a schema.
///
///     let config = try ConfigLoader(schema: .lors).load(file: "configs/x.yaml", overrides: ["train.batch_size=32"])
///
/// Steps: parse the file; load its `_base_` files (a name or a list of names, relative to the including file) and
/// deep-merge them in order, then the file's own keys on top (maps merge, scalars and lists replace, a map with
/// `_delete_: true` replaces); apply overrides; validate every key (unknown keys, types, ranges); fill defaults;
/// expand presets; run cross-key rules.
public struct ConfigLoader: Sendable {
    /// The schema configs are validated against.
    public let schema: ConfigSchema

    /// Drop the schema's retired keys instead of rejecting them.
    public let acceptingRetiredKeys: Bool

    /// A loader for `schema` (usually `.lors`); `acceptingRetiredKeys` for configs stored in checkpoints, which older
    /// versions may have written with keys this version no longer declares.
    public init(schema: ConfigSchema = .lors, acceptingRetiredKeys: Bool = false) {
        self.schema = schema
        self.acceptingRetiredKeys = acceptingRetiredKeys
    }

    /// Loads the config file at `file` with its `_base_` files, then applies `overrides` (`key.path=value` each).
    public func load(file: String, overrides: [String] = []) throws -> Config {
        var included: [String] = []
        let raw = try resolveFile(file, chain: [], included: &included, requestedAt: nil)
        return try finish(raw, overrides: overrides, sourceFile: file, includedFiles: included)
    }

    /// Loads a config from YAML `text` (e.g. the resolved YAML stored in a checkpoint), then applies `overrides`.
    ///
    /// - Parameters:
    ///   - source: the name used in messages and as `Config.sourceFile`.
    ///   - baseDirectory: where `_base_` names are resolved; nil means the current directory.
    public func load(yaml text: String, source: String = "<string>", baseDirectory: String? = nil,
                     overrides: [String] = []) throws -> Config {
        var included: [String] = []
        let node = try RawNode.parse(yaml: text, file: source)
        let directory = baseDirectory ?? FileManager.default.currentDirectoryPath
        let raw = try resolveBases(of: node, file: source, directory: directory, chain: [], included: &included)
        return try finish(raw, overrides: overrides, sourceFile: source, includedFiles: included)
    }

    private func finish(_ merged: RawNode, overrides: [String], sourceFile: String,
                        includedFiles: [String]) throws -> Config {
        var raw = merged
        for text in overrides {
            let override = try Override(parsing: text, schema: schema)
            raw = raw.setting(override.value, at: override.path)
        }
        var (values, explicit) = try Validator(schema: schema, acceptingRetiredKeys: acceptingRetiredKeys).resolve(raw)
        for preset in schema.presets {
            guard case let .string(name)? = values[preset.key], let expansion = preset.expansions[name] else { continue }
            for (key, presetValue) in expansion {
                if explicit.contains(key), let found = values[key], found != presetValue {
                    throw ConfigError(.presetConflict(presetKey: preset.key, preset: name, key: key,
                                                      presetValue: presetValue.yamlText, found: found.yamlText),
                                      at: location(of: key, in: raw))
                }
                values[key] = presetValue
            }
        }
        let config = Config(schema: schema, values: values, explicitKeys: explicit, sourceFile: sourceFile,
                            includedFiles: includedFiles)
        for rule in schema.rules {
            try rule.check(config)
        }
        return config
    }

    /// Where `path` was set in `raw` (`file:line` or `--set ...`).
    private func location(of path: String, in raw: RawNode) -> String? {
        var node = raw
        var origin: String?
        for component in path.split(separator: ".").map(String.init) {
            guard let entry = node.entries?.first(where: { $0.key == component }) else { return origin }
            origin = entry.origin
            node = entry.value
        }
        return origin
    }

    /// Reads and parses `path`, then merges its bases. `chain` holds the canonical paths being loaded (for cycles).
    private func resolveFile(_ path: String, chain: [(canonical: String, shown: String)], included: inout [String],
                             requestedAt: String?) throws -> RawNode {
        let canonical = URL(fileURLWithPath: path).standardizedFileURL.resolvingSymlinksInPath().path
        if chain.contains(where: { $0.canonical == canonical }) {
            throw ConfigError(.inheritanceCycle(chain: chain.map(\.shown) + [path]), at: requestedAt)
        }
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            let reason = FileManager.default.fileExists(atPath: path) ? error.localizedDescription : "no such file"
            throw ConfigError(.unreadableFile(path: path, reason: reason), at: requestedAt)
        }
        let node = try RawNode.parse(yaml: text, file: path)
        let directory = (path as NSString).deletingLastPathComponent
        let merged = try resolveBases(of: node, file: path, directory: directory,
                                      chain: chain + [(canonical, path)], included: &included)
        included.append(path)
        return merged
    }

    /// Loads the `_base_` files named in `node` (relative to `directory`), merges them in order, then `node` on top.
    private func resolveBases(of node: RawNode, file: String, directory: String,
                              chain: [(canonical: String, shown: String)], included: inout [String]) throws -> RawNode {
        guard let entries = node.entries, let baseEntry = entries.first(where: { $0.key == "_base_" }) else {
            return try RawNode.emptyMap(origin: file).merged(with: node)
        }
        let names: [String]
        switch baseEntry.value.content {
        case let .scalar(name, _) where !baseEntry.value.isNull:
            names = [name]
        case let .list(items):
            names = try items.map { item in
                guard case let .scalar(name, _) = item.content, !item.isNull else {
                    throw ConfigError(.invalidBase(found: baseEntry.value.foundText), at: baseEntry.origin)
                }
                return name
            }
        default:
            throw ConfigError(.invalidBase(found: baseEntry.value.foundText), at: baseEntry.origin)
        }
        var merged = RawNode.emptyMap(origin: file)
        for name in names {
            let basePath = name.hasPrefix("/") ? name : (directory as NSString).appendingPathComponent(name)
            let base = try resolveFile(basePath, chain: chain, included: &included, requestedAt: baseEntry.origin)
            merged = try merged.merged(with: base)
        }
        let own = RawNode(content: .map(entries.filter { $0.key != "_base_" }), origin: node.origin)
        return try merged.merged(with: own)
    }
}
