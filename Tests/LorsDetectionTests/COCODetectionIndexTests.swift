import Foundation
import XCTest
import LorsTestSupport
@testable import LorsDetection

/// `COCODetectionIndex`: mmdetection's CocoDataset rules (annotation filters, crowd boxes, image filters, labels),
/// its errors, the serialized form, and the counts on a `lors make-detection` set.
final class COCODetectionIndexTests: XCTestCase {
    /// Categories listed out of id order; images 1–4 and annotations 1–9 exercising each rule.
    static let rules = """
    {"info": {}, "images": [
      {"id": 1, "file_name": "a.jpg", "width": 100, "height": 80},
      {"id": 2, "file_name": "empty.jpg", "width": 50, "height": 50},
      {"id": 3, "file_name": "narrow.jpg", "width": 20, "height": 100},
      {"id": 4, "file_name": "crowd_only.jpg", "width": 64, "height": 64}],
     "annotations": [
      {"id": 1, "image_id": 1, "category_id": 5, "bbox": [10.5, 20.25, 30, 40], "area": 1200, "iscrowd": 0,
       "segmentation": [[10.5, 20.25, 40.5, 20.25, 40.5, 60.25]]},
      {"id": 2, "image_id": 1, "category_id": 5, "bbox": [1, 1, 10, 10], "area": 0, "iscrowd": 0},
      {"id": 3, "image_id": 1, "category_id": 1, "bbox": [1, 1, 0.5, 10], "area": 5, "iscrowd": 0},
      {"id": 4, "image_id": 1, "category_id": 1, "bbox": [1, 1, 10, 0.99], "area": 9.9, "iscrowd": 0},
      {"id": 5, "image_id": 1, "category_id": 90, "bbox": [0, 0, 100, 80], "area": 8000, "iscrowd": 1,
       "segmentation": {"counts": [0, 8000], "size": [80, 100]}},
      {"id": 6, "image_id": 1, "category_id": 1, "bbox": [5, 5, 10, 10], "area": 100, "iscrowd": 0, "ignore": 1},
      {"id": 7, "image_id": 1, "category_id": 1, "bbox": [100, 5, 10, 10], "area": 100, "iscrowd": 0},
      {"id": 8, "image_id": 3, "category_id": 1, "bbox": [2, 2, 10, 10], "area": 100, "iscrowd": 0},
      {"id": 9, "image_id": 4, "category_id": 90, "bbox": [2, 3, 20, 30], "area": 600, "iscrowd": 1},
      {"id": 10, "image_id": 1, "category_id": 1, "bbox": [-5, 70, 20, 30.5], "area": 200}],
     "categories": [{"id": 90, "name": "toothbrush"}, {"id": 1, "name": "person"}, {"id": 5, "name": "airplane"}]}
    """

    func index(_ text: String, _ options: COCODetectionIndex.Options = .training, source: String = "t.json") throws -> COCODetectionIndex {
        try COCODetectionIndex(json: Array(text.utf8), source: source, options: options)
    }

    func testLabelsFollowAscendingCategoryIDs() throws {
        let index = try index(Self.rules)
        XCTAssertEqual(index.categoryIDs, [1, 5, 90])
        XCTAssertEqual(index.categoryNames, ["person", "airplane", "toothbrush"])
        XCTAssertEqual(index.classCount, 3)
    }

    func testTrainingRules() throws {
        let index = try index(Self.rules)
        // Image 2 (no annotation) and image 3 (20 px wide) are dropped; image 4 (crowd only) is kept, as mmdetection does.
        XCTAssertEqual(index.imageIDs, [1, 4])
        XCTAssertEqual((0..<index.count).map(index.fileName), ["a.jpg", "crowd_only.jpg"])
        XCTAssertEqual(index.widths, [100, 64])
        XCTAssertEqual(index.heights, [80, 64])
        // Image 1: annotation 1 and annotation 10 (partly outside, still overlapping) are boxes, in file order.
        XCTAssertEqual(Array(index.boxes(0)), [10.5, 20.25, 40.5, 60.25, -5, 70, 15, 100.5])
        XCTAssertEqual(Array(index.labels(0)), [1, 0])
        XCTAssertEqual(Array(index.ignoredBoxes(0)), [0, 0, 100, 80])
        XCTAssertEqual(Array(index.boxes(1)), [])
        XCTAssertEqual(Array(index.labels(1)), [])
        XCTAssertEqual(Array(index.ignoredBoxes(1)), [2, 3, 22, 33])
        var expected = COCODetectionIndex.Counts()
        expected.imagesInFile = 4
        expected.annotationsInFile = 10
        expected.imagesDroppedEmpty = 1
        expected.imagesDroppedSmall = 1
        expected.imagesKeptWithoutBoxes = 0
        expected.boxes = 2
        expected.ignoredBoxes = 2
        expected.annotationsSkipped = 5  // area 0, w 0.5, h 0.99, ignore, outside the image
        expected.annotationsOfDroppedImages = 1
        XCTAssertEqual(index.counts, expected)
    }

    func testEmptyImagesStayWithoutFilterEmptyGTAndSmallImagesStillGo() throws {
        let index = try index(Self.rules, .init(filterEmptyGT: false, minImageSize: 32))
        XCTAssertEqual(index.imageIDs, [1, 2, 4])
        XCTAssertEqual(index.counts.imagesKeptWithoutBoxes, 1)
        XCTAssertEqual(Array(index.boxes(1)), [])
        let lowered = try self.index(Self.rules, .init(filterEmptyGT: true, minImageSize: 20))
        XCTAssertEqual(lowered.imageIDs, [1, 3, 4])
        XCTAssertEqual(Array(lowered.boxes(1)), [2, 2, 12, 12])
    }

    func testTestModeKeepsEveryImage() throws {
        let index = try index(Self.rules, .test)
        XCTAssertEqual(index.imageIDs, [1, 2, 3, 4])
        XCTAssertEqual(index.counts.imagesDroppedEmpty + index.counts.imagesDroppedSmall + index.counts.annotationsOfDroppedImages, 0)
        XCTAssertEqual(Array(index.labels(0)), [1, 0])
        XCTAssertEqual(Array(index.boxes(1)), [])
        XCTAssertEqual(Array(index.boxes(2)), [2, 2, 12, 12])
        XCTAssertEqual(index.counts.annotationsSkipped, 5)
        XCTAssertEqual(index.counts.imagesKeptWithoutBoxes, 1)
    }

    func testAnImageInfoFileWithoutAnnotations() throws {
        let text = #"{"images": [{"id": 3, "file_name": "x.jpg", "width": 40, "height": 40}], "categories": [{"id": 2}]}"#
        XCTAssertEqual(try index(text, .test).imageIDs, [3])
        XCTAssertEqual(try index(text).imageIDs, [])
    }

    // MARK: Errors

    func assertError(_ text: String, _ fragments: [String], file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try index(text, source: "bad.json"), file: file, line: line) { error in
            let message = String(describing: error)
            XCTAssertTrue(message.hasPrefix("bad.json"), message, file: file, line: line)
            for fragment in fragments { XCTAssertTrue(message.contains(fragment), "\(message) lacks \(fragment)", file: file, line: line) }
        }
    }

    static let image = #"{"id": 1, "file_name": "a.jpg", "width": 40, "height": 40}"#

    func annotations(_ list: String) -> String {
        #"{"images": [\#(Self.image)], "categories": [{"id": 3}], "annotations": [\#(list)]}"#
    }

    func testMalformedJSONNamesLineAndColumn() {
        assertError("{\"images\": [],\n  \"categories\": [}", ["bad.json:2:18: malformed JSON"])
        assertError(annotations(#"{"id": 1, "image_id": 1, "category_id": 3, "bbox": [1, 2, 3, 4], "area": 1, "segmentation": [[1, 2,]]}"#),
                    ["bad.json:1:", "malformed JSON"])
    }

    func testNegativeBoxSizeNamesTheAnnotation() {
        assertError(annotations(#"{"id": 17, "image_id": 1, "category_id": 3, "bbox": [1, 2, -3, 4], "area": 1}"#),
                    ["annotation id 17", "negative width (-3)"])
        assertError(annotations(#"{"id": 18, "image_id": 1, "category_id": 3, "bbox": [1, 2, 3, -0.5], "area": 1}"#),
                    ["annotation id 18", "negative height (-0.5)"])
    }

    func testUnknownCategoryAndImage() {
        assertError(annotations(#"{"id": 4, "image_id": 1, "category_id": 7, "bbox": [1, 2, 3, 4], "area": 1}"#),
                    ["annotation id 4", "category_id 7, which is not in 'categories'"])
        assertError(annotations(#"{"id": 5, "image_id": 9, "category_id": 3, "bbox": [1, 2, 3, 4], "area": 1}"#),
                    ["annotation id 5", "image_id 9, which is not in 'images'"])
    }

    func testMissingKeys() {
        assertError(annotations(#"{"id": 6, "image_id": 1, "category_id": 3, "bbox": [1, 2, 3, 4]}"#), ["annotation id 6", "no key 'area'"])
        assertError(annotations(#"{"id": 6, "image_id": 1, "category_id": 3, "area": 2}"#), ["annotation id 6", "no key 'bbox'"])
        assertError(annotations(#"{"image_id": 1, "category_id": 3, "bbox": [1, 2, 3, 4], "area": 1}"#), ["annotations[0]", "no key 'id'"])
        assertError(#"{"images": [{"id": 2, "width": 4, "height": 4}], "categories": []}"#, ["image id 2", "no key 'file_name'"])
        assertError(#"{"images": [{"id": 2, "file_name": "a", "width": 4}], "categories": []}"#, ["image id 2", "no key 'height'"])
        assertError(#"{"images": [], "annotations": []}"#, ["no key 'categories'"])
        assertError(#"{"categories": []}"#, ["no key 'images'"])
        assertError(#"{"images": [], "categories": [{"name": "x"}]}"#, ["categories[0]", "no key 'id'"])
    }

    func testRepeatedIDs() {
        let twice = #"{"id": 2, "image_id": 1, "category_id": 3, "bbox": [1, 2, 3, 4], "area": 1}"#
        assertError(annotations(twice + "," + twice), ["annotation id 2 (annotations[1])", "annotations[0]", "unique"])
        assertError(#"{"images": [\#(Self.image), \#(Self.image)], "categories": []}"#, ["images[1]", "images[0]", "unique"])
        assertError(#"{"images": [], "categories": [{"id": 4}, {"id": 4}]}"#, ["categories[1]", "unique"])
    }

    func testErrorsFromAFileNameIt() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("lors-coco-index-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("instances.json").path
        try Data(annotations(#"{"id": 4, "image_id": 1, "category_id": 7, "bbox": [1, 2, 3, 4], "area": 1}"#).utf8)
            .write(to: URL(fileURLWithPath: path))
        XCTAssertThrowsError(try COCODetectionIndex(path: path)) { error in
            XCTAssertEqual(String(describing: error), "\(path): annotation id 4 (annotations[0]) has category_id 7, which is not in 'categories'")
        }
        try Data("{\"images\": [\n\n  3 ]".utf8).write(to: URL(fileURLWithPath: path))
        XCTAssertThrowsError(try COCODetectionIndex(path: path)) { error in
            XCTAssertTrue(String(describing: error).hasPrefix("\(path): images[0] must be an object"), String(describing: error))
        }
        try Data("{\"images\": [\n\n  {] }".utf8).write(to: URL(fileURLWithPath: path))
        XCTAssertThrowsError(try COCODetectionIndex(path: path)) { error in
            XCTAssertTrue(String(describing: error).hasPrefix("\(path):3:4: malformed JSON"), String(describing: error))
        }
        XCTAssertThrowsError(try COCODetectionIndex(path: path + ".missing")) { error in
            XCTAssertEqual(String(describing: error), "\(path).missing: no such file")
        }
        try Data(Self.rules.utf8).write(to: URL(fileURLWithPath: path))
        XCTAssertEqual(try COCODetectionIndex(path: path), try index(Self.rules))
    }

    // MARK: Serialized form

    func testSerializedRoundTrip() throws {
        for options in [COCODetectionIndex.Options.training, .test, .init(filterEmptyGT: false, minImageSize: 7)] {
            let index = try index(Self.rules, options)
            let bytes = index.serialized()
            let copy = try COCODetectionIndex(serialized: bytes)
            XCTAssertEqual(copy, index)
            XCTAssertEqual(copy.serialized(), bytes)
            XCTAssertEqual((0..<copy.count).map(copy.fileName), (0..<index.count).map(index.fileName))
        }
        let bytes = try index(Self.rules).serialized()
        XCTAssertThrowsError(try COCODetectionIndex(serialized: Array(bytes.dropLast(3))))
        XCTAssertThrowsError(try COCODetectionIndex(serialized: bytes + [0]))
        XCTAssertThrowsError(try COCODetectionIndex(serialized: Array("not an index".utf8)))
        XCTAssertThrowsError(try COCODetectionIndex(serialized: []))
    }

    // MARK: A generated set

    func number(_ value: Any?) -> Double {
        if let value = value as? Int { return Double(value) }
        if let value = value as? Double { return value }
        return (value as! NSNumber).doubleValue
    }

    func int(_ value: Any?) -> Int { Int(number(value)) }

    func box(_ annotation: [String: Any]) -> [Double] { (annotation["bbox"] as! [Any]).map(number) }

    func testCountsOfAMakeDetectionSetEqualItsJSON() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("lors-coco-index-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        let made = try runLors(["make-detection", "--out", directory.path, "--train", "40", "--val", "10", "--size", "96",
                                "--format", "jpeg"])
        XCTAssertEqual(made.status, 0, made.stderr)
        for split in ["train", "val"] {
            let path = directory.appendingPathComponent("annotations/instances_\(split).json").path
            let object = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as? [String: Any])
            let images = try XCTUnwrap(object["images"] as? [[String: Any]])
            let annotations = try XCTUnwrap(object["annotations"] as? [[String: Any]])
            let categories = try XCTUnwrap(object["categories"] as? [[String: Any]])
            for options in [COCODetectionIndex.Options.training, .test] {
                let index = try COCODetectionIndex(path: path, options: options)
                XCTAssertEqual(index.counts.imagesInFile, images.count)
                XCTAssertEqual(index.counts.annotationsInFile, annotations.count)
                XCTAssertEqual(index.classCount, categories.count)
                let c = index.counts
                XCTAssertEqual(c.boxes + c.ignoredBoxes + c.annotationsSkipped + c.annotationsOfDroppedImages, annotations.count)
                XCTAssertEqual(index.count + c.imagesDroppedEmpty + c.imagesDroppedSmall, images.count)
                // Every canvas is 96 px and (nearly always) has items: per image, the JSON's boxes and crowd boxes.
                let referenced = Set(annotations.map { int($0["image_id"]) })
                let expectedImages = images.map { int($0["id"]) }.filter { options.testMode || referenced.contains($0) }
                XCTAssertEqual(index.imageIDs, expectedImages)
                for (i, id) in index.imageIDs.enumerated() {
                    let own = annotations.filter { int($0["image_id"]) == id }
                    let usable = own.filter { let b = box($0); return number($0["area"]) > 0 && b[2] >= 1 && b[3] >= 1 }
                    let crowd = usable.filter { int($0["iscrowd"]) != 0 }, plain = usable.filter { int($0["iscrowd"]) == 0 }
                    XCTAssertEqual(index.labels(i).count, plain.count)
                    XCTAssertEqual(index.ignoredBoxes(i).count, 4 * crowd.count)
                    XCTAssertEqual(Array(index.boxes(i)), plain.flatMap { a -> [Float] in
                        let b = box(a)
                        return [Float(b[0]), Float(b[1]), Float(b[0] + b[2]), Float(b[1] + b[3])]
                    })
                    XCTAssertEqual(index.labels(i).map { index.categoryIDs[Int($0)] }, plain.map { int($0["category_id"]) })
                }
                XCTAssertEqual(try COCODetectionIndex(serialized: index.serialized()), index)
            }
        }
    }
}
