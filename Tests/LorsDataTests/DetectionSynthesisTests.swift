import Foundation
import XCTest
import LorsData
import LorsImage
import LorsTensor

/// `lors make-detection`'s generator on the real Fashion-MNIST (Debian's dataset-fashion-mnist; cluster/setup.sh
/// installs it and the tests fail without it).
final class DetectionSynthesisTests: XCTestCase {
    static let root = "/usr/share/datasets/fashion-mnist"
    var directory = ""

    override func setUpWithError() throws {
        directory = try makeTemporaryDirectory(name)
        XCTAssertTrue(FileManager.default.fileExists(atPath: DetectionSynthesisTests.root + "/t10k-images-idx3-ubyte.gz"),
                      "Fashion-MNIST is not installed at \(DetectionSynthesisTests.root) (bash cluster/setup.sh --deps-only)")
    }

    override func tearDown() { try? FileManager.default.removeItem(atPath: directory) }

    private func options(_ sub: String, train: Int, val: Int, size: Int, seed: UInt64 = 7,
                         format: ImageFormat = .png) -> DetectionSynthesis.Options {
        var options = DetectionSynthesis.Options(outputDirectory: (directory as NSString).appendingPathComponent(sub))
        options.trainImages = train
        options.valImages = val
        options.size = size
        options.seed = seed
        options.format = format
        options.fashionMNISTRoot = DetectionSynthesisTests.root
        return options
    }

    private func loadJSON(_ path: String) throws -> [String: Any] {
        let object = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path)))
        return try XCTUnwrap(object as? [String: Any], "\(path) is not a JSON object")
    }

    /// Every file under `path`, relative, sorted.
    private func listing(_ path: String) throws -> [String] {
        try (FileManager.default.subpathsOfDirectory(atPath: path)).sorted()
    }

    func testSmallSetMatchesTheRenderedCanvases() throws {
        let options = options("small", train: 20, val: 10, size: 128)
        let summaries = try DetectionSynthesis.generate(options)
        XCTAssertEqual(summaries.map(\.split), ["train", "val"])
        let files = try listing(options.outputDirectory)
        XCTAssertFalse(files.contains { ($0 as NSString).lastPathComponent.hasPrefix(".") }, "temporary files left: \(files)")
        XCTAssertTrue(files.contains("annotations/instances_train.json") && files.contains("annotations/instances_val.json"))

        for (split, count) in [("train", 20), ("val", 10)] {
            let source = try FashionMNIST.load(root: options.fashionMNISTRoot, split: DetectionSynthesis.sourceSplit(of: split))
            let json = try loadJSON(options.outputDirectory + "/annotations/instances_\(split).json")
            let images = try XCTUnwrap(json["images"] as? [[String: Any]])
            let annotations = try XCTUnwrap(json["annotations"] as? [[String: Any]])
            let categories = try XCTUnwrap(json["categories"] as? [[String: Any]])
            XCTAssertNotNil(json["info"])
            XCTAssertEqual(categories.map { $0["id"] as? Int }, (1...10).map { $0 })
            XCTAssertEqual(categories.map { $0["name"] as? String }, FashionMNIST.classNames)
            XCTAssertEqual(images.count, count)
            XCTAssertEqual(images.map { $0["id"] as? Int }, (1...count).map { $0 })
            XCTAssertEqual(annotations.map { $0["id"] as? Int }, (1...annotations.count).map { $0 }, "annotation ids 1...K")
            let summary = try XCTUnwrap(summaries.first { $0.split == split })
            XCTAssertEqual(summary.annotations, annotations.count)
            XCTAssertEqual(summary.small + summary.medium + summary.large, annotations.count)

            var byImage: [Int: [[String: Any]]] = [:]
            for annotation in annotations { byImage[annotation["image_id"] as! Int, default: []].append(annotation) }
            for image in images {
                let id = image["id"] as! Int
                XCTAssertEqual(image["width"] as? Int, 128)
                XCTAssertEqual(image["height"] as? Int, 128)
                let fileName = try XCTUnwrap(image["file_name"] as? String)
                let decoded = try ByteImage.read(contentsOf: options.outputDirectory + "/\(split)/" + fileName)
                let canvas = DetectionSynthesis.render(index: id - 1, split: split, seed: options.seed, size: 128, source: source)
                XCTAssertEqual(decoded, canvas.image, "\(split)/\(fileName) holds the rendered canvas")
                XCTAssertTrue((1...6).contains(canvas.items.count))

                // The test's own count of each item's visible pixels and their box, from the owner map.
                var expected: [(label: Int, box: [Int], area: Int, crowd: Int)] = []
                for (k, item) in canvas.items.enumerated() {
                    var area = 0, minX = Int.max, minY = Int.max, maxX = -1, maxY = -1
                    for y in 0..<128 {
                        for x in 0..<128 where canvas.owner[y * 128 + x] == Int8(k) {
                            XCTAssertTrue(x >= item.x && x < item.x + item.side && y >= item.y && y < item.y + item.side,
                                          "visible pixel outside the item's square")
                            area += 1
                            minX = min(minX, x); maxX = max(maxX, x); minY = min(minY, y); maxY = max(maxY, y)
                        }
                    }
                    XCTAssertLessThanOrEqual(area, item.opaquePixels)
                    guard area > 0 else { continue }
                    expected.append((item.label + 1, [minX, minY, maxX - minX + 1, maxY - minY + 1], area,
                                     4 * area < item.opaquePixels ? 1 : 0))
                }
                let found = byImage[id] ?? []
                XCTAssertEqual(found.count, expected.count, "annotations of \(split) image \(id)")
                for (annotation, want) in zip(found, expected) {
                    let box = try XCTUnwrap(annotation["bbox"] as? [Int])
                    let area = try XCTUnwrap(annotation["area"] as? Int)
                    XCTAssertEqual(box, want.box)
                    XCTAssertEqual(area, want.area)
                    XCTAssertEqual(annotation["category_id"] as? Int, want.label)
                    XCTAssertEqual(annotation["iscrowd"] as? Int, want.crowd)
                    XCTAssertTrue(box[0] >= 0 && box[1] >= 0 && box[2] > 0 && box[3] > 0
                                  && box[0] + box[2] <= 128 && box[1] + box[3] <= 128, "box \(box) inside the canvas")
                    XCTAssertTrue(area > 0 && area <= box[2] * box[3], "area \(area) within box \(box)")
                }
            }
        }
    }

    func testAreaRangesAllOccurAndJPEGFilesDecode() throws {
        let options = options("ranges", train: 200, val: 0, size: 256, format: .jpeg)
        let summary = try XCTUnwrap(try DetectionSynthesis.generate(options).first)
        XCTAssertEqual(summary.images, 200)
        let json = try loadJSON(summary.annotationFile)
        let annotations = try XCTUnwrap(json["annotations"] as? [[String: Any]])
        let areas = annotations.map { $0["area"] as! Int }
        let small = areas.filter { $0 < 32 * 32 }.count
        let large = areas.filter { $0 > 96 * 96 }.count
        let medium = areas.count - small - large
        XCTAssertEqual([small, medium, large], [summary.small, summary.medium, summary.large])
        XCTAssertGreaterThan(small, 0)
        XCTAssertGreaterThan(medium, 0)
        XCTAssertGreaterThan(large, 0)
        XCTAssertGreaterThan(summary.crowd, 0, "some items are mostly covered")
        XCTAssertEqual(annotations.filter { $0["iscrowd"] as! Int == 1 }.count, summary.crowd)
        for annotation in annotations {
            let box = annotation["bbox"] as! [Int], area = annotation["area"] as! Int
            XCTAssertTrue(box[0] >= 0 && box[1] >= 0 && box[0] + box[2] <= 256 && box[1] + box[3] <= 256)
            XCTAssertTrue(area > 0 && area <= box[2] * box[3])
        }
        let images = try XCTUnwrap(json["images"] as? [[String: Any]])
        for image in images.prefix(5) {
            let name = image["file_name"] as! String
            XCTAssertTrue(name.hasSuffix(".jpg"))
            let path = options.outputDirectory + "/train/" + name
            XCTAssertEqual(ImageFormat.sniff([UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))), .jpeg)
            let decoded = try ByteImage.read(contentsOf: path)
            XCTAssertEqual([decoded.width, decoded.height, decoded.channels], [256, 256, 3])
        }
    }

    func testSameSeedSameBytesWhateverTheThreadCount() throws {
        let threads = Threading.threads
        defer { Threading.setThreads(threads) }
        Threading.setThreads(1)
        let first = options("one", train: 12, val: 4, size: 96)
        _ = try DetectionSynthesis.generate(first)
        Threading.setThreads(3)
        let second = options("two", train: 12, val: 4, size: 96)
        _ = try DetectionSynthesis.generate(second)
        let other = options("other", train: 12, val: 4, size: 96, seed: 8)
        _ = try DetectionSynthesis.generate(other)

        let files = try listing(first.outputDirectory).filter { $0.contains(".") }
        XCTAssertEqual(files.count, 12 + 4 + 2)
        XCTAssertEqual(files, try listing(second.outputDirectory).filter { $0.contains(".") })
        var differing = 0
        for file in files {
            let a = try Data(contentsOf: URL(fileURLWithPath: first.outputDirectory + "/" + file))
            let b = try Data(contentsOf: URL(fileURLWithPath: second.outputDirectory + "/" + file))
            XCTAssertEqual(a, b, "\(file) differs between two runs with the same seed")
            let c = try Data(contentsOf: URL(fileURLWithPath: other.outputDirectory + "/" + file))
            if a != c { differing += 1 }
        }
        XCTAssertEqual(differing, files.count, "another seed changes every file")
    }

    func testBilinearResize() {
        // 2×2 → 4×4 with pixel centres aligned: corners keep their values, the middle interpolates.
        let out = DetectionSynthesis.resizeBilinear([0, 100, 100, 200], width: 2, height: 2, to: 4)
        XCTAssertEqual(Array(out[0..<4]), [0, 25, 75, 100])
        XCTAssertEqual(Array(out[12..<16]), [100, 125, 175, 200])
        XCTAssertEqual(DetectionSynthesis.resizeBilinear([9, 9, 9, 9], width: 2, height: 2, to: 1), [9])
    }

    func testMissingFashionMNISTNamesTheFile() {
        var options = options("missing", train: 2, val: 0, size: 64)
        options.fashionMNISTRoot = directory + "/nowhere"
        assertThrowsNaming(directory + "/nowhere/train-images-idx3-ubyte.gz", "cannot read") {
            _ = try DetectionSynthesis.generate(options)
        }
    }
}
