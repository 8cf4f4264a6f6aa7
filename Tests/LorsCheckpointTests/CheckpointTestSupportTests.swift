import Foundation
import XCTest

/// The damage helpers fail, not skip, when they cannot do their damage.
final class CheckpointTestSupportTests: XCTestCase {
    func testFlipByteDamagesTheFirstOccurrenceOfTheValues() throws {
        let work = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: work) }
        let path = work + "/file.bin"
        let values: [Float] = [1.5, -2.25]
        let pattern = values.withUnsafeBytes { [UInt8]($0) }
        let original = [UInt8](repeating: 0xEE, count: 5) + pattern + [0x01] + pattern
        try Data(original).write(to: URL(fileURLWithPath: path))
        try flipByte(in: path, matching: values)
        let damaged = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        XCTAssertEqual(damaged.count, original.count)
        let changed = damaged.indices.filter { damaged[$0] != original[$0] }
        XCTAssertEqual(changed, [5 + pattern.count / 2])
    }

    func testFlipByteThrowsWhenTheValuesAreNotInTheFile() throws {
        let work = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: work) }
        let path = work + "/file.bin"
        let original = [UInt8](repeating: 0xEE, count: 64)
        try Data(original).write(to: URL(fileURLWithPath: path))
        for values: [Float] in [[1.5, -2.25], Array(repeating: 3, count: 32)] {  // absent; longer than the file
            XCTAssertThrowsError(try flipByte(in: path, matching: values)) { error in
                let notFound = error as? DatasetBytesNotFound
                XCTAssertNotNil(notFound, "\(type(of: error)): \(error)")
                XCTAssertFalse(error is XCTSkip)
                XCTAssertEqual(notFound?.path, path)
                XCTAssertTrue("\(error)".contains("no byte was damaged"), "\(error)")
            }
        }
        XCTAssertEqual([UInt8](try Data(contentsOf: URL(fileURLWithPath: path))), original)
    }
}
