import Foundation
import LorsNative
import XCTest

final class GzipTests: XCTestCase {
    private var directory: URL!

    override func setUpWithError() throws {
        directory = try makeTemporaryDirectory("lors-gzip-tests")
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: directory)
    }

    private func write(_ bytes: [UInt8], to name: String) throws -> String {
        let url = directory.appendingPathComponent(name)
        try Data(bytes).write(to: url)
        return url.path
    }

    private func sampleBytes(_ count: Int) -> [UInt8] {
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        return (0..<count).map { index in
            state = state &* 6364136223846793005 &+ 1442695040888963407
            // Half noise, half runs, so deflate uses both stored-like and compressed blocks.
            return index % 1000 < 500 ? UInt8(truncatingIfNeeded: state >> 33) : UInt8(index / 1000 % 256)
        }
    }

    func testRoundTripThroughAFile() throws {
        for count in [0, 1, 1000, 1_500_000] {
            let original = sampleBytes(count)
            let compressed = Gzip.compress(original)
            XCTAssertEqual(Array(compressed.prefix(2)), [0x1f, 0x8b])
            let path = try write(compressed, to: "sample-\(count).gz")
            XCTAssertEqual(try Gzip.decompress(contentsOf: path), original, "\(count) bytes")
        }
    }

    func testConcatenatedMembersAreDecompressedInTurn() throws {
        let first = sampleBytes(3000)
        let second = Array("second member".utf8)
        let path = try write(Gzip.compress(first) + Gzip.compress(second), to: "two-members.gz")
        XCTAssertEqual(try Gzip.decompress(contentsOf: path), first + second)
    }

    func testTruncatedFileIsAnErrorNamingTheFile() throws {
        let compressed = Gzip.compress(sampleBytes(100_000))
        for keep in [compressed.count - 1, compressed.count - 8, compressed.count / 2, 10] {
            let path = try write(Array(compressed.prefix(keep)), to: "truncated-\(keep).gz")
            let error = assertThrowsNativeError(try Gzip.decompress(contentsOf: path), "kept \(keep) of \(compressed.count) bytes")
            XCTAssertEqual(error?.library, .zlib)
            XCTAssertTrue(error?.description.contains(path) ?? false, "\(String(describing: error))")
        }
    }

    func testCorruptAndForeignFilesAreErrors() throws {
        var compressed = Gzip.compress(sampleBytes(50_000))
        compressed[compressed.count / 2] ^= 0xFF
        let corruptPath = try write(compressed, to: "corrupt.gz")
        let corrupt = assertThrowsNativeError(try Gzip.decompress(contentsOf: corruptPath))
        XCTAssertEqual(corrupt?.library, .zlib)
        XCTAssertTrue(corrupt?.description.contains(corruptPath) ?? false)

        let plainPath = try write(Array("not gzip at all".utf8), to: "plain.gz")
        let plain = assertThrowsNativeError(try Gzip.decompress(contentsOf: plainPath))
        XCTAssertTrue(plain?.message.contains("not a gzip stream") ?? false, "\(String(describing: plain))")

        let missingPath = directory.appendingPathComponent("missing.gz").path
        let missing = assertThrowsNativeError(try Gzip.decompress(contentsOf: missingPath))
        XCTAssertEqual(missing?.library, .system)
        XCTAssertTrue(missing?.description.contains(missingPath) ?? false, "\(String(describing: missing))")
    }

    /// Real data from Debian's `dataset-fashion-mnist` (cluster/setup.sh installs it; the test fails without it).
    func testFashionMNISTLabelsDecompress() throws {
        let path = "/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz"
        guard FileManager.default.fileExists(atPath: path) else {
            XCTFail("\(path) is missing (bash cluster/setup.sh --deps-only installs dataset-fashion-mnist)")
            return
        }
        let bytes = try Gzip.decompress(contentsOf: path)
        XCTAssertEqual(bytes.count, 8 + 10_000)
        XCTAssertEqual(Array(bytes.prefix(8)), [0, 0, 8, 1, 0, 0, 0x27, 0x10])  // magic 2049, 10000 items
        XCTAssertTrue(bytes.dropFirst(8).allSatisfy { $0 < 10 })
    }
}
