import Foundation
import XCTest
import LorsNative

/// A fresh temporary directory for one test, removed at tear-down by the caller.
func makeTemporaryDirectory(_ name: String = #function) throws -> String {
    let clean = name.filter { $0.isLetter || $0.isNumber }
    let path = (NSTemporaryDirectory() as NSString).appendingPathComponent("lors-data-\(clean)-\(UUID().uuidString.prefix(8))")
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

/// Big-endian bytes of `value`.
func bigEndianBytes(_ value: UInt32) -> [UInt8] {
    [UInt8(value >> 24), UInt8((value >> 16) & 0xFF), UInt8((value >> 8) & 0xFF), UInt8(value & 0xFF)]
}

/// An IDX file: `magic`, the dimensions, the payload; gzip'd when `path` ends in `.gz`.
func writeIDX(_ path: String, magic: UInt32, dimensions: [Int], payload: [UInt8]) throws {
    var bytes = bigEndianBytes(magic)
    for d in dimensions { bytes += bigEndianBytes(UInt32(d)) }
    bytes += payload
    let data = path.hasSuffix(".gz") ? Gzip.compress(bytes) : bytes
    try Data(data).write(to: URL(fileURLWithPath: path))
}

/// Asserts `body` throws an error whose description contains `file` and `fragment`.
func assertThrowsNaming(_ file: String, _ fragment: String, _ body: () throws -> Void,
                        sourceFile: StaticString = #filePath, line: UInt = #line) {
    do {
        try body()
        XCTFail("expected an error naming \(file)", file: sourceFile, line: line)
    } catch {
        let text = "\(error)"
        XCTAssertTrue(text.contains(file), "error '\(text)' does not name \(file)", file: sourceFile, line: line)
        XCTAssertTrue(text.contains(fragment), "error '\(text)' does not say '\(fragment)'", file: sourceFile, line: line)
    }
}
