import Foundation
import XCTest
import LorsData

final class FashionMNISTReaderTests: XCTestCase {
    var directory = ""

    override func setUpWithError() throws { directory = try makeTemporaryDirectory(name) }
    override func tearDown() { try? FileManager.default.removeItem(atPath: directory) }

    private func path(_ name: String) -> String { (directory as NSString).appendingPathComponent(name) }

    /// 3 images of 2×2 and 3 labels, gzip'd.
    private func writeGoodPair() throws -> (String, String) {
        let images = path("train-images-idx3-ubyte.gz"), labels = path("train-labels-idx1-ubyte.gz")
        try writeIDX(images, magic: 0x803, dimensions: [3, 2, 2], payload: Array(0..<12))
        try writeIDX(labels, magic: 0x801, dimensions: [3], payload: [9, 0, 4])
        return (images, labels)
    }

    func testReadsGzippedIDXPair() throws {
        let (images, labels) = try writeGoodPair()
        let set = try FashionMNIST.load(images: images, labels: labels)
        XCTAssertEqual(set.count, 3)
        XCTAssertEqual([set.channels, set.height, set.width], [1, 2, 2])
        XCTAssertEqual(set.labels, [9, 0, 4])
        XCTAssertEqual(set.pixels, Array(0..<12))
    }

    func testReadsUncompressedIDX() throws {
        let images = path("a-images"), labels = path("a-labels")
        try writeIDX(images, magic: 0x803, dimensions: [1, 1, 3], payload: [1, 2, 3])
        try writeIDX(labels, magic: 0x801, dimensions: [1], payload: [7])
        let set = try FashionMNIST.load(images: images, labels: labels)
        XCTAssertEqual(set.pixels, [1, 2, 3])
        XCTAssertEqual(set.labels, [7])
    }

    func testWrongMagicNamesTheFile() throws {
        let (images, _) = try writeGoodPair()
        let labels = path("bad-labels.gz")
        try writeIDX(labels, magic: 0x803, dimensions: [3], payload: [1, 2, 3])
        assertThrowsNaming(labels, "wrong magic number 0x00000803") { _ = try FashionMNIST.load(images: images, labels: labels) }
    }

    func testTruncatedFileNamesTheFile() throws {
        let (_, labels) = try writeGoodPair()
        let images = path("short-images.gz")
        try writeIDX(images, magic: 0x803, dimensions: [3, 2, 2], payload: Array(0..<11))
        assertThrowsNaming(images, "truncated") { _ = try FashionMNIST.load(images: images, labels: labels) }
        let header = path("header-only")
        try Data([0, 0, 8, 3, 0, 0]).write(to: URL(fileURLWithPath: header))
        assertThrowsNaming(header, "truncated") { _ = try FashionMNIST.load(images: header, labels: labels) }
    }

    func testLabelOutOfRangeNamesTheFile() throws {
        let (images, _) = try writeGoodPair()
        let labels = path("labels-10.gz")
        try writeIDX(labels, magic: 0x801, dimensions: [3], payload: [1, 10, 2])
        assertThrowsNaming(labels, "label 10 of sample 1 out of range 0..<10") {
            _ = try FashionMNIST.load(images: images, labels: labels)
        }
    }

    func testCountMismatchNamesBothFiles() throws {
        let (images, _) = try writeGoodPair()
        let labels = path("two-labels.gz")
        try writeIDX(labels, magic: 0x801, dimensions: [2], payload: [1, 2])
        assertThrowsNaming(images, "3 images but \(labels) has 2 labels") {
            _ = try FashionMNIST.load(images: images, labels: labels)
        }
    }

    func testMissingFileNamesTheFile() {
        let missing = path("nothing-here.gz")
        assertThrowsNaming(missing, "cannot read") { _ = try FashionMNIST.load(images: missing, labels: missing) }
    }

    func testRootLayoutAndInstalledDataset() throws {
        _ = try writeGoodPair()
        let set = try FashionMNIST.load(root: directory, split: "train")
        XCTAssertEqual(set.count, 3)
        // The real Fashion-MNIST (Debian package dataset-fashion-mnist), when installed.
        let root = "/usr/share/datasets/fashion-mnist"
        guard FileManager.default.fileExists(atPath: root + "/t10k-labels-idx1-ubyte.gz") else { return }
        let test = try FashionMNIST.load(root: root, split: "test")
        XCTAssertEqual(test.count, 10_000)
        XCTAssertEqual([test.channels, test.height, test.width], [1, 28, 28])
        XCTAssertEqual(Set(test.labels).count, 10)
        XCTAssertEqual(test.labels.filter { $0 == 3 }.count, 1000, "Fashion-MNIST test classes have 1000 images each")
    }
}

final class CIFAR100ReaderTests: XCTestCase {
    var directory = ""

    override func setUpWithError() throws { directory = try makeTemporaryDirectory(name) }
    override func tearDown() { try? FileManager.default.removeItem(atPath: directory) }

    /// `records` records (coarse, fine, pixel pattern i + j).
    private func record(coarse: UInt8, fine: UInt8, fill: UInt8) -> [UInt8] {
        [coarse, fine] + (0..<3072).map { UInt8((Int(fill) + $0 / 1024 * 10) & 0xFF) }
    }

    func testReadsSmallBinaryFile() throws {
        let file = (directory as NSString).appendingPathComponent("train.bin")
        let bytes = record(coarse: 3, fine: 42, fill: 1) + record(coarse: 19, fine: 99, fill: 50) + record(coarse: 0, fine: 0, fill: 7)
        try Data(bytes).write(to: URL(fileURLWithPath: file))
        let set = try CIFAR100.load(root: directory, split: "train")
        XCTAssertEqual(set.count, 3)
        XCTAssertEqual([set.channels, set.height, set.width], [3, 32, 32])
        XCTAssertEqual(set.labels, [42, 99, 0], "the fine label is the class")
        XCTAssertEqual(set.classes, 100)
        // Sample 1: red plane 50, green 60, blue 70 (channel planes kept in order).
        let image1 = Array(set.pixels[3072..<6144])
        XCTAssertEqual([image1[0], image1[1023], image1[1024], image1[2048], image1[3071]], [50, 50, 60, 70, 70])
    }

    func testTruncatedAndOutOfRange() throws {
        let truncated = (directory as NSString).appendingPathComponent("test.bin")
        try Data(record(coarse: 1, fine: 1, fill: 0) + [1, 2, 3]).write(to: URL(fileURLWithPath: truncated))
        assertThrowsNaming(truncated, "truncated file: expected 6148 bytes, found 3077") { _ = try CIFAR100.load(file: truncated) }

        let badFine = (directory as NSString).appendingPathComponent("bad-fine.bin")
        try Data(record(coarse: 1, fine: 2, fill: 0) + record(coarse: 1, fine: 100, fill: 0)).write(to: URL(fileURLWithPath: badFine))
        assertThrowsNaming(badFine, "label 100 of sample 1 out of range 0..<100") { _ = try CIFAR100.load(file: badFine) }

        let badCoarse = (directory as NSString).appendingPathComponent("bad-coarse.bin")
        try Data(record(coarse: 20, fine: 2, fill: 0)).write(to: URL(fileURLWithPath: badCoarse))
        assertThrowsNaming(badCoarse, "label 20 of sample 0 out of range 0..<20") { _ = try CIFAR100.load(file: badCoarse) }

        let empty = (directory as NSString).appendingPathComponent("empty.bin")
        try Data().write(to: URL(fileURLWithPath: empty))
        assertThrowsNaming(empty, "truncated") { _ = try CIFAR100.load(file: empty) }
    }
}
