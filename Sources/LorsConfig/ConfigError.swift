// The one error type of LorsConfig. Every user-facing message is rendered here, in `ConfigError.message`.

import Foundation

/// An error found while reading, merging, overriding or validating a configuration.
///
/// The `description` always starts with the place the problem comes from when it is known (`file:line` of the
/// offending YAML, or the `--set key=value` text), then names the dotted key path and what was expected, e.g.
///
///     configs/x.yaml:4: train.batchsize: unknown key (did you mean train.batch_size?)
///     --set optimizer.lr=fast: optimizer.lr: expected float > 0, found "fast"
public struct ConfigError: Error, CustomStringConvertible, Equatable, Sendable {
    /// What went wrong, with the key paths and values involved.
    public enum Kind: Equatable, Sendable {
        /// A config file (or one of its `_base_` files) could not be read.
        case unreadableFile(path: String, reason: String)
        /// The YAML text is malformed; `line` and `column` count from 1.
        case yamlSyntax(file: String, line: Int, column: Int, problem: String)
        /// A section (or the document itself; `path` empty) holds something other than a map.
        case notAMap(path: String, found: String)
        /// The same key appears twice in one YAML map.
        case duplicateKey(path: String)
        /// `_base_` is not a file name or a list of file names.
        case invalidBase(found: String)
        /// Following `_base_` leads back to a file already being loaded; `chain` ends with the repeated file.
        case inheritanceCycle(chain: [String])
        /// `_delete_` is not `true` or `false`.
        case invalidDelete(path: String, found: String)
        /// A `--set` argument is not of the form `key.path=value`.
        case malformedOverride(text: String)
        /// A key that earlier versions declared and another key replaced (`replacement` names it).
        case retiredKey(path: String, replacement: String)
        /// A key that the schema does not know; `suggestion` is the closest known dotted path, if any is close.
        case unknownKey(path: String, suggestion: String?)
        /// A value of the wrong type (`expected` is the schema's type description, `found` the value as written).
        case wrongType(path: String, expected: String, found: String)
        /// A number outside the allowed range (`allowed` as written by the schema, e.g. "in [0, 1)").
        case outOfRange(path: String, value: String, allowed: String)
        /// A string that is not one of the allowed enum values.
        case notInEnum(path: String, value: String, allowed: [String])
        /// A list with a number of elements outside the allowed bounds.
        case wrongLength(path: String, count: Int, allowed: String)
        /// An enum list that names the same value twice.
        case duplicateElement(path: String, value: String)
        /// A preset (e.g. `lr_schedule.preset: 1x`) sets `key` to `presetValue`, but the config sets it to `found`.
        case presetConflict(presetKey: String, preset: String, key: String, presetValue: String, found: String)
        /// Keys that are valid one by one but not together (cross-key rules); `detail` names values and lengths.
        case inconsistent(keys: [String], detail: String)
    }

    /// What went wrong.
    public let kind: Kind
    /// Where it comes from: `file:line`, `file:line:column`, a file name, or the `--set ...` text; nil if unknown.
    public let location: String?

    /// Creates an error of `kind`, found at `location` (`file:line`, a file, or `--set ...`).
    public init(_ kind: Kind, at location: String? = nil) {
        self.kind = kind
        self.location = location
    }

    /// The message without the location prefix.
    public var message: String {
        switch kind {
        case let .unreadableFile(path, reason):
            return "cannot read config file '\(path)': \(reason)"
        case let .yamlSyntax(file, line, column, problem):
            return "YAML syntax error at line \(line), column \(column) of \((file as NSString).lastPathComponent): \(problem)"
        case let .notAMap(path, found):
            let what = path.isEmpty ? "the document" : path
            return "\(what): expected a map of keys, found \(found)"
        case let .duplicateKey(path):
            return "\(path): key appears twice in the same map"
        case let .invalidBase(found):
            return "_base_: expected a file name or a list of file names, found \(found)"
        case let .inheritanceCycle(chain):
            return "_base_ inheritance cycle: " + chain.joined(separator: " -> ")
        case let .invalidDelete(path, found):
            return "\(path)._delete_: expected true or false, found \(found)"
        case let .malformedOverride(text):
            return "malformed override '\(text)': expected key.path=value, e.g. train.batch_size=32"
        case let .retiredKey(path, replacement):
            return "\(path): this key was replaced; use \(replacement)"
        case let .unknownKey(path, suggestion):
            let hint = suggestion.map { " (did you mean \($0)?)" } ?? ""
            return "\(path): unknown key\(hint)"
        case let .wrongType(path, expected, found):
            return "\(path): expected \(expected), found \(found)"
        case let .outOfRange(path, value, allowed):
            return "\(path): value \(value) is out of range, allowed: \(allowed)"
        case let .notInEnum(path, value, allowed):
            return "\(path): \(value) is not an allowed value, allowed values: \(allowed.joined(separator: ", "))"
        case let .wrongLength(path, count, allowed):
            return "\(path): list has \(count) element\(count == 1 ? "" : "s"), allowed length: \(allowed)"
        case let .duplicateElement(path, value):
            return "\(path): \(value) is listed more than once"
        case let .presetConflict(presetKey, preset, key, presetValue, found):
            return "\(key) = \(found) conflicts with \(presetKey) = \(preset), which sets \(key) = \(presetValue); "
                + "remove \(key) or set \(presetKey): null to use a custom schedule"
        case let .inconsistent(keys, detail):
            return keys.joined(separator: " / ") + ": " + detail
        }
    }

    /// `location: message`, or just the message when the location is unknown.
    public var description: String {
        guard let location else { return message }
        return "\(location): \(message)"
    }
}

/// Messages for programming errors (a key missing from the schema, an accessor of the wrong type, a bad schema).
/// These crash: they are bugs in the code, not mistakes in a config file.
enum ConfigBug {
    static func unknownKey(_ path: String) -> String {
        "LorsConfig: '\(path)' is not a key of the config schema (add it to Schema+Lors.swift)"
    }
    static func wrongAccessor(_ path: String, wanted: String, type: String) -> String {
        "LorsConfig: '\(path)' is a \(type) field, not \(wanted)"
    }
    static func nullValue(_ path: String) -> String {
        "LorsConfig: '\(path)' is null; read nullable fields with the optional accessor"
    }
    static func badSchema(_ path: String, _ problem: String) -> String {
        "LorsConfig schema: \(path): \(problem)"
    }
}
