// `--set key.path=value` overrides: parsed per the schema type of the key, then applied on top of the merged files.

import Foundation

/// One parsed `--set` argument.
struct Override {
    /// The dotted key path, e.g. `train.batch_size`.
    let path: String
    /// The value as a raw node (a scalar, or a list for list fields), remembering the `--set` text as its origin.
    let value: RawNode

    /// Parses `text` (`key.path=value`) against `schema`. List fields take `[1,2,3]`, `1,2,3` or `[]`; other fields
    /// take the whole text after `=`. Surrounding quotes mark a string (`"1x"`); plain `null` or `~` is null.
    /// The typed check happens in validation, with this text as the error location.
    init(parsing text: String, schema: ConfigSchema) throws {
        let origin = "--set \(text)"
        guard let equals = text.firstIndex(of: "=") else { throw ConfigError(.malformedOverride(text: text)) }
        let path = text[..<equals].trimmingCharacters(in: .whitespaces)
        let valueText = String(text[text.index(after: equals)...]).trimmingCharacters(in: .whitespaces)
        guard !path.isEmpty else { throw ConfigError(.malformedOverride(text: text)) }
        if schema.sectionPaths.contains(path) {
            let example = schema.fieldPaths.first { $0.hasPrefix(path + ".") } ?? path
            throw ConfigError(.wrongType(path: path, expected: "a single key such as \(example), not a whole section",
                                         found: "\"\(valueText)\""), at: origin)
        }
        guard let spec = schema.field(at: path) else {
            throw ConfigError(.unknownKey(path: path, suggestion: Validator(schema: schema).suggestion(for: path)),
                              at: origin)
        }
        self.path = path
        if case .list = spec.type, !RawNode(content: .scalar(valueText, quoted: false), origin: nil).isNull {
            var inner = Substring(valueText)
            if inner.hasPrefix("[") && inner.hasSuffix("]") { inner = inner.dropFirst().dropLast() }
            let pieces = inner.trimmingCharacters(in: .whitespaces).isEmpty ? [] : inner.split(
                separator: ",", omittingEmptySubsequences: false)
            value = RawNode(content: .list(pieces.map { Self.scalar(String($0), origin: origin) }), origin: origin)
        } else {
            value = Self.scalar(valueText, origin: origin)
        }
    }

    private static func scalar(_ text: String, origin: String) -> RawNode {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        for quote in ["\"", "'"] where trimmed.count >= 2 && trimmed.hasPrefix(quote) && trimmed.hasSuffix(quote) {
            return RawNode(content: .scalar(String(trimmed.dropFirst().dropLast()), quoted: true), origin: origin)
        }
        return RawNode(content: .scalar(trimmed, quoted: false), origin: origin)
    }
}

extension RawNode {
    /// This map with `value` set at the dotted `path`, creating (or replacing non-map) sections on the way.
    func setting(_ value: RawNode, at path: String) -> RawNode {
        let components = path.split(separator: ".").map(String.init)
        return setting(value, at: components[...])
    }

    private func setting(_ value: RawNode, at components: ArraySlice<String>) -> RawNode {
        guard let head = components.first else { return value }
        var entries = self.entries ?? []
        if let index = entries.firstIndex(where: { $0.key == head }) {
            entries[index].value = entries[index].value.setting(value, at: components.dropFirst())
            entries[index].origin = value.origin
        } else {
            let child = RawNode.emptyMap(origin: value.origin).setting(value, at: components.dropFirst())
            entries.append(RawEntry(key: head, value: child, origin: value.origin))
        }
        return RawNode(content: .map(entries), origin: origin)
    }
}
