// The untyped tree read from YAML (before validation), its parsing with Yams, and the deep merge of `_base_` files.

import Yams

/// An untyped YAML value that remembers where it was written (`file:line` or `--set ...`).
struct RawNode {
    /// The YAML content; scalars keep their text and whether they were quoted.
    enum Content {
        case scalar(String, quoted: Bool)
        case list([RawNode])
        case map([RawEntry])
    }

    var content: Content
    /// `file:line` or `--set key=value`; nil when unknown.
    var origin: String?

    /// An empty map.
    static func emptyMap(origin: String?) -> RawNode { RawNode(content: .map([]), origin: origin) }

    /// Whether this is a plain `null`, `~`, or empty scalar.
    var isNull: Bool {
        guard case let .scalar(text, quoted) = content, !quoted else { return false }
        return ["", "~", "null", "Null", "NULL"].contains(text)
    }

    /// The entries when this is a map.
    var entries: [RawEntry]? {
        if case let .map(entries) = content { return entries }
        return nil
    }

    /// The value under `key` when this is a map.
    subscript(key: String) -> RawNode? { entries?.first { $0.key == key }?.value }

    /// A short rendering for messages: `"abc"` for scalars, `a list [1, 2]`, `a map`, `null`.
    var foundText: String {
        switch content {
        case .scalar where isNull: return "null"
        case let .scalar(text, _): return "\"\(text)\""
        case let .list(items):
            let elements = items.map { item -> String in
                if case let .scalar(text, _) = item.content { return text }
                return item.foundText
            }
            return "a list [\(elements.joined(separator: ", "))]"
        case .map: return "a map"
        }
    }
}

/// One `key: value` pair of a raw map; `origin` is where the key was written.
struct RawEntry {
    var key: String
    var value: RawNode
    var origin: String?
}

extension RawNode {
    /// Parses YAML `text` read from `file` (a name used in messages). An empty document is an empty map.
    static func parse(yaml text: String, file: String) throws -> RawNode {
        let node: Node?
        do {
            node = try Yams.compose(yaml: text)
        } catch let error as YamlError {
            throw syntaxError(error, file: file, text: text)
        }
        guard let node else { return .emptyMap(origin: file) }
        let root = try convert(node, file: file, path: "")
        if root.isNull { return .emptyMap(origin: file) }
        guard case .map = root.content else {
            throw ConfigError(.notAMap(path: "", found: root.foundText), at: root.origin ?? file)
        }
        return root
    }

    private static func origin(_ node: Node, file: String) -> String {
        node.mark.map { "\(file):\($0.line)" } ?? file
    }

    private static func convert(_ node: Node, file: String, path: String) throws -> RawNode {
        let here = origin(node, file: file)
        if let scalar = node.scalar {
            return RawNode(content: .scalar(scalar.string, quoted: scalar.style != .plain), origin: here)
        }
        if let sequence = node.sequence {
            let items = try sequence.enumerated().map { index, item in
                try convert(item, file: file, path: "\(path)[\(index)]")
            }
            return RawNode(content: .list(items), origin: here)
        }
        guard let mapping = node.mapping else { return RawNode(content: .scalar("", quoted: false), origin: here) }
        var entries: [RawEntry] = []
        for (keyNode, valueNode) in mapping {
            let keyOrigin = origin(keyNode, file: file)
            guard let key = keyNode.scalar?.string else {
                throw ConfigError(.wrongType(path: path.isEmpty ? "<key>" : "\(path).<key>", expected: "a string key",
                                             found: "a \(keyNode.sequence != nil ? "list" : "map")"), at: keyOrigin)
            }
            let keyPath = path.isEmpty ? key : "\(path).\(key)"
            if entries.contains(where: { $0.key == key }) {
                throw ConfigError(.duplicateKey(path: keyPath), at: keyOrigin)
            }
            entries.append(RawEntry(key: key, value: try convert(valueNode, file: file, path: keyPath),
                                    origin: keyOrigin))
        }
        return RawNode(content: .map(entries), origin: here)
    }

    private static func syntaxError(_ error: YamlError, file: String, text: String) -> ConfigError {
        var line = 0
        var column = 0
        var problem = "\(error)"
        switch error {
        case let .scanner(context, message, mark, _), let .parser(context, message, mark, _),
             let .composer(context, message, mark, _):
            (line, column) = (mark.line, mark.column)
            problem = (context.map { "\($0.text) (line \($0.mark.line)): " } ?? "") + message
        case let .reader(message, offset, _, _):
            problem = message
            if let offset {
                let prefix = text.prefix(offset)
                line = prefix.filter { $0 == "\n" }.count + 1
                column = prefix.count - (prefix.lastIndex(of: "\n").map { prefix.distance(from: prefix.startIndex, to: $0) + 1 } ?? 0) + 1
            }
        default:
            break
        }
        return ConfigError(.yamlSyntax(file: file, line: line, column: column, problem: problem),
                           at: line > 0 ? "\(file):\(line):\(column)" : file)
    }
}

extension RawNode {
    /// Deep-merges `overlay` onto `self`: maps merge key by key (recursively), scalars and lists replace.
    /// A map in `overlay` with `_delete_: true` replaces the base map instead of merging. `_delete_` keys are
    /// consumed: the result holds none from `overlay`.
    func merged(with overlay: RawNode, path: String = "") throws -> RawNode {
        guard case let .map(overlayEntries) = overlay.content else { return try overlay.strippingDelete(path: path) }
        if let flag = overlay["_delete_"], try Self.deleteFlag(flag, path: path) {
            return try overlay.strippingDelete(path: path)
        }
        guard case var .map(result) = content else { return try overlay.strippingDelete(path: path) }
        for entry in overlayEntries where entry.key != "_delete_" {
            let childPath = path.isEmpty ? entry.key : "\(path).\(entry.key)"
            if let index = result.firstIndex(where: { $0.key == entry.key }) {
                result[index].value = try result[index].value.merged(with: entry.value, path: childPath)
                result[index].origin = entry.origin
            } else {
                result.append(RawEntry(key: entry.key, value: try entry.value.strippingDelete(path: childPath),
                                       origin: entry.origin))
            }
        }
        return RawNode(content: .map(result), origin: overlay.origin)
    }

    /// This node with every `_delete_` key removed (checking that each is a bool).
    func strippingDelete(path: String = "") throws -> RawNode {
        switch content {
        case .scalar:
            return self
        case let .list(items):
            return RawNode(content: .list(try items.map { try $0.strippingDelete(path: path) }), origin: origin)
        case let .map(entries):
            var kept: [RawEntry] = []
            for entry in entries {
                let childPath = path.isEmpty ? entry.key : "\(path).\(entry.key)"
                if entry.key == "_delete_" {
                    _ = try Self.deleteFlag(entry.value, path: path)
                    continue
                }
                kept.append(RawEntry(key: entry.key, value: try entry.value.strippingDelete(path: childPath),
                                     origin: entry.origin))
            }
            return RawNode(content: .map(kept), origin: origin)
        }
    }

    private static func deleteFlag(_ node: RawNode, path: String) throws -> Bool {
        if case let .scalar(text, false) = node.content, let flag = ScalarParser.bool(text) { return flag }
        throw ConfigError(.invalidDelete(path: path.isEmpty ? "<top>" : path, found: node.foundText), at: node.origin)
    }
}
