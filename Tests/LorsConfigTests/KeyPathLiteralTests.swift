// Code outside LorsConfig reads RunSettings, never the config by key path: no Swift file under Sources/ (except
// Sources/LorsConfig) holds a string literal that is a declared key path or a section prefix of one.

import Foundation
import XCTest
@testable import LorsConfig

/// Finds string literals that name config keys in Swift source text.
enum KeyPathLiteralScan {
    /// Literals that may not appear outside LorsConfig: every dotted field path (`train.batch_size`), every nested
    /// section path (`model.vit`) and every section prefix (`model.vit.`, `train.`).
    static func forbiddenLiterals(_ schema: ConfigSchema) -> Set<String> {
        var literals = Set(schema.fieldPaths.filter { $0.contains(".") })
        for section in schema.sectionPaths {
            literals.insert(section + ".")
            if section.contains(".") { literals.insert(section) }
        }
        return literals
    }

    /// Config accessors: a call of one of these with any declared field path as its literal argument is a read by key
    /// path (this catches top-level fields such as `seed`, whose bare name is too common to forbid everywhere).
    static let accessors = ["int", "optionalInt", "double", "optionalDouble", "bool", "string", "optionalString",
                            "intList", "doubleList", "stringList", "value", "isExplicit"]

    /// `(line number, literal)` of every offending literal in `text`.
    static func findings(in text: String, schema: ConfigSchema) -> [(line: Int, literal: String)] {
        let forbidden = forbiddenLiterals(schema), fields = Set(schema.fieldPaths)
        let literal = try! NSRegularExpression(pattern: #""((?:[^"\\\n]|\\.)*)""#)
        let call = try! NSRegularExpression(pattern: #"\.(\#(accessors.joined(separator: "|")))\(\s*"([^"\\\n]*)""#)
        var found: [(Int, String)] = []
        for (index, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = String(line), range = NSRange(line.startIndex..., in: line)
            for match in literal.matches(in: line, range: range) {
                let content = String(line[Range(match.range(at: 1), in: line)!])
                if forbidden.contains(content) { found.append((index + 1, content)) }
            }
            for match in call.matches(in: line, range: range) {
                let content = String(line[Range(match.range(at: 2), in: line)!])
                if fields.contains(content) && !forbidden.contains(content) { found.append((index + 1, content)) }
            }
        }
        return found
    }
}

final class KeyPathLiteralTests: XCTestCase {
    static let sources = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Sources")

    func testNoKeyPathLiteralsOutsideLorsConfig() throws {
        let manager = FileManager.default
        let enumerator = try XCTUnwrap(manager.enumerator(at: Self.sources, includingPropertiesForKeys: nil))
        var scanned = 0
        var offenders: [String] = []
        for case let url as URL in enumerator where url.pathExtension == "swift" {
            let relative = String(url.path.dropFirst(Self.sources.path.count + 1))
            guard !relative.hasPrefix("LorsConfig/") else { continue }
            scanned += 1
            let text = try String(contentsOf: url, encoding: .utf8)
            for (line, literal) in KeyPathLiteralScan.findings(in: text, schema: .lors) {
                offenders.append("Sources/\(relative):\(line): \"\(literal)\"")
            }
        }
        XCTAssertGreaterThan(scanned, 50, "Sources/ not found at \(Self.sources.path)")
        XCTAssertEqual(offenders, [], "read RunSettings (and RunSettings.*.Key for key names) instead of key path literals")
    }

    /// The scan finds each kind of key path literal (so the test above can fail) and passes keys inside longer text.
    func testTheScanFindsKeyPathLiterals() {
        let text = """
        let a = c.int("train.batch_size")
        let b = config.string("model.type") == "vit"
        out[key] = String(config.int("model.vit." + key))
        let seed = UInt64(c.int("seed"))
        let fine = "train.batch_size \\(batch) is not divisible", name = "seed", split = "train"
        let other = ["attn.qkv", "write.fsync"]
        """
        let found = KeyPathLiteralScan.findings(in: text, schema: .lors)
        XCTAssertEqual(found.map(\.line), [1, 2, 3, 4])
        XCTAssertEqual(found.map(\.literal), ["train.batch_size", "model.type", "model.vit.", "seed"])
    }
}
