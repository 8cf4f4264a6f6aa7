// Shared helpers: a temporary directory of YAML files and assertions on ConfigError.

import Foundation
import XCTest
@testable import LorsConfig

/// A fresh temporary directory, removed when the test case tears down.
final class ConfigFiles {
    let directory: URL

    init() throws {
        directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("lors-config-tests-\(UUID().uuidString)", isDirectory: true)
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    /// Writes `text` to `name` (which may contain subdirectories) and returns its path.
    @discardableResult
    func write(_ name: String, _ text: String) throws -> String {
        let url = directory.appendingPathComponent(name)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try text.write(to: url, atomically: true, encoding: .utf8)
        return url.path
    }

    func path(_ name: String) -> String { directory.appendingPathComponent(name).path }

    func remove() { try? FileManager.default.removeItem(at: directory) }
}

/// Base class creating `files` per test.
class ConfigTestCase: XCTestCase {
    var files: ConfigFiles!
    let loader = ConfigLoader(schema: .lors)

    override func setUpWithError() throws {
        files = try ConfigFiles()
    }

    override func tearDown() {
        files.remove()
    }

    /// Loads YAML `text` written to `name` in the temp dir, with `overrides`.
    func load(_ text: String, name: String = "config.yaml", overrides: [String] = []) throws -> Config {
        try loader.load(file: try files.write(name, text), overrides: overrides)
    }
}

/// Asserts that `body` throws a `ConfigError` whose description contains every string in `fragments`;
/// returns the error for further checks.
@discardableResult
func assertConfigError<T>(_ body: @autoclosure () throws -> T, contains fragments: [String],
                          file: StaticString = #filePath, line: UInt = #line) -> ConfigError? {
    do {
        let value = try body()
        XCTFail("expected a ConfigError, got \(value)", file: file, line: line)
        return nil
    } catch let error as ConfigError {
        for fragment in fragments where !error.description.contains(fragment) {
            XCTFail("error message \"\(error.description)\" lacks \"\(fragment)\"", file: file, line: line)
        }
        return error
    } catch {
        XCTFail("expected a ConfigError, got \(type(of: error)): \(error)", file: file, line: line)
        return nil
    }
}
