import Foundation
/// One key whose value differs between a checkpoint's stored config and the current one.
public struct ConfigDifference: Equatable, Sendable, CustomStringConvertible {
    /// Dotted key path (`model.depth`).
    public var key: String
    /// The value in the checkpoint (nil: key absent there).
    public var stored: String?
    /// The current value (nil: key absent now).
    public var current: String?

    public init(key: String, stored: String?, current: String?) {
        self.key = key
        self.stored = stored
        self.current = current
    }

    public var description: String { "\(key): checkpoint \(stored ?? "<absent>"), now \(current ?? "<absent>")" }
}

/// Compares resolved configs (the YAML that `Config.yaml()` renders: block mappings with two-space indentation,
/// scalars and flow lists on one line) key by key.
public enum ConfigComparison {
    /// Flattens block-style YAML into `dotted.key → value text` (comments and blank lines ignored; a key with
    /// nothing after the colon opens a section; `{}` is an empty section).
    public static func flatten(_ yaml: String) -> [String: String] {
        var result: [String: String] = [:]
        var stack: [(indent: Int, name: String)] = []
        for rawLine in yaml.split(separator: "\n", omittingEmptySubsequences: true) {
            let line = String(rawLine)
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed.isEmpty || trimmed.hasPrefix("#") || trimmed == "---" { continue }
            let indent = line.prefix { $0 == " " }.count
            guard let colon = trimmed.firstIndex(of: ":") else { continue }
            let name = String(trimmed[..<colon]).trimmingCharacters(in: .whitespaces)
            var value = String(trimmed[trimmed.index(after: colon)...]).trimmingCharacters(in: .whitespaces)
            if let hash = value.range(of: " #"), !value.hasPrefix("\""), !value.hasPrefix("'") {
                value = String(value[..<hash.lowerBound]).trimmingCharacters(in: .whitespaces)
            }
            while let last = stack.last, last.indent >= indent { stack.removeLast() }
            let path = (stack.map(\.name) + [name]).joined(separator: ".")
            if value.isEmpty {
                stack.append((indent, name))
            } else {
                result[path] = value
            }
        }
        return result
    }

    /// The keys whose values differ, sorted, ignoring `allowedToChange` (the caller's policy, e.g.
    /// `RunSettings.keysAllowedToChangeOnResume`).
    public static func differences(stored: String, current: String, allowedToChange: Set<String>) -> [ConfigDifference] {
        let old = flatten(stored), new = flatten(current)
        return Set(old.keys).union(new.keys).sorted().compactMap { key in
            guard !allowedToChange.contains(key), old[key] != new[key] else { return nil }
            return ConfigDifference(key: key, stored: old[key], current: new[key])
        }
    }

    /// Throws `CheckpointError.configMismatch` listing the differing keys, if any.
    public static func check(stored: String, current: String, allowedToChange: Set<String>) throws {
        let found = differences(stored: stored, current: current, allowedToChange: allowedToChange)
        if !found.isEmpty { throw CheckpointError.configMismatch(differences: found) }
    }
}
