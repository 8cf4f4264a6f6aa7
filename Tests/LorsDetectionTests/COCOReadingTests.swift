import XCTest
import LorsDetection

/// Reading instances and results JSON: what is kept, numbers as Python reads them, and errors that name the file,
/// the line:column of malformed JSON, the record, the key, the annotation id or the category id.
final class COCOReadingTests: XCTestCase {
    func groundTruth(_ text: String) throws -> COCOGroundTruth {
        try COCOGroundTruth.parse(Array(text.utf8), source: "gt.json")
    }

    func error(_ body: () throws -> Void) -> String {
        do {
            try body()
            return "no error"
        } catch {
            XCTAssertTrue(error is COCOError, "\(type(of: error))")
            return "\(error)"
        }
    }

    static let valid = """
        {"info": {"year": 2017}, "images": [{"id": 7, "file_name": "a.jpg"}, {"id": 3}],
         "annotations": [{"id": 1, "image_id": 7, "category_id": 2, "bbox": [1.5, 2, 30.25, 4e1], "area": 900.5,
                          "iscrowd": 0, "segmentation": [[1, 2, 3, 4, 5, 6]]},
                         {"id": 2, "image_id": 3, "category_id": 2, "bbox": [0, 0, 10, 10], "area": 100, "iscrowd": true}],
         "categories": [{"id": 2, "name": "cat \\u00e9\\n"}, {"id": 5, "name": "dog"}]}
        """

    func testReadsWhatTheEvaluationNeeds() throws {
        let gt = try groundTruth(Self.valid)
        XCTAssertEqual(gt.imageIDs, [7, 3])
        XCTAssertEqual(gt.categories, [COCOCategory(id: 2, name: "cat é\n"), COCOCategory(id: 5, name: "dog")])
        XCTAssertEqual(gt.annotations, [
            COCOAnnotation(id: 1, imageID: 7, categoryID: 2, box: COCOBox(x: 1.5, y: 2, width: 30.25, height: 40), area: 900.5),
            COCOAnnotation(id: 2, imageID: 3, categoryID: 2, box: COCOBox(x: 0, y: 0, width: 10, height: 10), area: 100, isCrowd: true),
        ])
        let detections = try COCODetections.parse(Array(#"[{"image_id": 3, "category_id": 5, "bbox": [1, 2, 3, 4], "score": 0.25, "extra": null}]"#.utf8),
                                                  source: "dt.json", groundTruth: gt)
        XCTAssertEqual(detections, [COCODetection(imageID: 3, categoryID: 5, box: COCOBox(x: 1, y: 2, width: 3, height: 4), score: 0.25)])
    }

    /// Every number is the double nearest to its decimal text (Python's float()), 17 significant digits included.
    func testNumbersAreCorrectlyRounded() throws {
        let texts = ["0.30000000000000004", "123.45678901234568", "0.1", "1e-7", "2.5E+10", "-0.0", "99.99999999999999",
                     "4.9406564584124654e-324", "1.7976931348623157e308", "12345678901234567890", "0.000123456789012345678",
                     "9007199254740993"]
        let json = #"[{"image_id": 1, "category_id": 1, "bbox": [0, 0, 1, 1], "score": "# + "%@" + "}]"
        let gt = try COCOGroundTruth(imageIDs: [1], categories: [COCOCategory(id: 1)], annotations: [])
        for text in texts {
            let parsed = try COCODetections.parse(Array(json.replacingOccurrences(of: "%@", with: text).utf8), source: "dt.json", groundTruth: gt)
            XCTAssertEqual(parsed[0].score.bitPattern, try XCTUnwrap(Double(text)).bitPattern, text)
        }
    }

    func testMalformedJSONNamesFileLineAndColumn() {
        XCTAssertEqual(error { _ = try groundTruth("{\n  \"images\": [\n    {\"id\": 1},\n  ]\n}") },
                       "gt.json:4:3: malformed JSON: unexpected character ']' where an array element was expected")
        XCTAssertEqual(error { _ = try groundTruth("{\"images\": [{\"id\": 1} {\"id\": 2}]}") },
                       "gt.json:1:23: malformed JSON: unexpected character '{' after an array element (expected ',' or ']')")
        XCTAssertEqual(error { _ = try groundTruth("{\"images\": [{\"id\": 1}]") },
                       "gt.json:1:23: malformed JSON: unexpected end of file inside an object (expected ',' or '}')")
        XCTAssertEqual(error { _ = try groundTruth("{\"ä\": 1,\n \"x\": tru}") },
                       "gt.json:2:7: malformed JSON: unexpected character 't' where a value was expected")
        XCTAssertEqual(error { _ = try groundTruth("") }, "gt.json:1:1: malformed JSON: unexpected end of file where a value was expected")
        XCTAssertEqual(error { _ = try groundTruth("{\"images\": [], \"categories\": []} x") },
                       "gt.json:1:34: malformed JSON: unexpected character 'x' after the end of the top-level value")
        XCTAssertEqual(error { _ = try groundTruth("{\"images\": [01]}") }, "gt.json:1:13: malformed JSON: invalid number (leading zero)")
        XCTAssertEqual(error { _ = try groundTruth("{\"images\": [\"a\tb\"]}") },
                       "gt.json:1:15: malformed JSON: control character in a string (must be escaped)")
    }

    func testNegativeWidthOrHeightNamesTheAnnotationId() {
        let text = Self.valid.replacingOccurrences(of: "[0, 0, 10, 10]", with: "[0, 0, -10, 10]")
        XCTAssertEqual(error { _ = try groundTruth(text) },
                       "gt.json: annotation id 2 (annotations[1]) has a negative width (-10) in its bbox [x, y, width, height]")
        let tall = Self.valid.replacingOccurrences(of: "[0, 0, 10, 10]", with: "[0, 0, 10, -0.5]")
        XCTAssertEqual(error { _ = try groundTruth(tall) },
                       "gt.json: annotation id 2 (annotations[1]) has a negative height (-0.5) in its bbox [x, y, width, height]")
    }

    func testUnknownCategoryOrImageIsNamed() throws {
        let text = Self.valid.replacingOccurrences(of: #""image_id": 3, "category_id": 2"#, with: #""image_id": 3, "category_id": 9"#)
        XCTAssertEqual(error { _ = try groundTruth(text) }, "gt.json: annotation id 2 (annotations[1]) has category_id 9, which is not in 'categories'")
        let image = Self.valid.replacingOccurrences(of: #""image_id": 3, "category_id": 2"#, with: #""image_id": 4, "category_id": 2"#)
        XCTAssertEqual(error { _ = try groundTruth(image) }, "gt.json: annotation id 2 (annotations[1]) has image_id 4, which is not in 'images'")
        let gt = try groundTruth(Self.valid)
        XCTAssertEqual(error {
            _ = try COCODetections.parse(Array(#"[{"image_id": 3, "category_id": 5, "bbox": [1, 2, 3, 4], "score": 1}, {"image_id": 7, "category_id": 1, "bbox": [1, 2, 3, 4], "score": 1}]"#.utf8),
                                         source: "dt.json", groundTruth: gt, groundTruthSource: "gt.json")
        }, "dt.json: detection 1 (image_id 7) has category_id 1, which is not in the categories of gt.json")
        XCTAssertEqual(error {
            _ = try COCODetections.parse(Array(#"[{"image_id": 8, "category_id": 5, "bbox": [1, 2, 3, 4], "score": 1}]"#.utf8),
                                         source: "dt.json", groundTruth: gt, groundTruthSource: "gt.json")
        }, "dt.json: detection 0 (image_id 8) has image_id 8, which is not in the images of gt.json")
        XCTAssertEqual(error {
            _ = try COCODetections.parse(Array(#"[{"image_id": 3, "category_id": 5, "bbox": [1, 2, -3, 4], "score": 1}]"#.utf8),
                                         source: "dt.json", groundTruth: gt)
        }, "dt.json: detection 0 (image_id 3) has a negative width (-3) in its bbox [x, y, width, height]")
    }

    func testMissingOrMistypedKeysNameTheKeyAndRecord() throws {
        XCTAssertEqual(error { _ = try groundTruth(Self.valid.replacingOccurrences(of: #""area": 100, "#, with: "")) },
                       "gt.json: annotation id 2 (annotations[1]) has no key 'area'")
        XCTAssertEqual(error { _ = try groundTruth(Self.valid.replacingOccurrences(of: #"{"id": 2, "image_id""#, with: #"{"image_id""#)) },
                       "gt.json: annotations[1] has no key 'id'")
        XCTAssertEqual(error { _ = try groundTruth(Self.valid.replacingOccurrences(of: #"{"id": 3}"#, with: #"{"id": "3"}"#)) },
                       "gt.json: images[1]: 'id' must be an integer, not a string")
        XCTAssertEqual(error { _ = try groundTruth(Self.valid.replacingOccurrences(of: "[1.5, 2, 30.25, 4e1]", with: "[1.5, 2, 30.25]")) },
                       "gt.json: annotation id 1 (annotations[0]): 'bbox' must be an array of 4 numbers [x, y, width, height], not an array")
        XCTAssertEqual(error { _ = try groundTruth(#"{"images": []}"#) }, "gt.json: the top-level object has no key 'categories'")
        XCTAssertEqual(error { _ = try groundTruth("[]") },
                       "gt.json: the top level is not an object (a COCO instances file has images, annotations, categories)")
        XCTAssertEqual(error { _ = try groundTruth(Self.valid.replacingOccurrences(of: #"{"id": 2, "image_id""#, with: #"{"id": 1, "image_id""#)) },
                       "gt.json: annotation id 1 (annotations[1]) repeats the id of annotations[0]; annotation ids must be unique")
        let gt = try groundTruth(Self.valid)
        XCTAssertEqual(error {
            _ = try COCODetections.parse(Array(#"[{"image_id": 3, "category_id": 5, "bbox": [1, 2, 3, 4]}]"#.utf8), source: "dt.json", groundTruth: gt)
        }, "dt.json: detection 0 has no key 'score'")
        XCTAssertEqual(error { _ = try COCODetections.parse(Array(#"{"annotations": []}"#.utf8), source: "dt.json", groundTruth: gt) },
                       "dt.json: the top level is not an array (a results file is a list of detections)")
        XCTAssertEqual(error { _ = try COCOGroundTruth.load(path: "/nonexistent/gt.json") }, "/nonexistent/gt.json: no such file")
    }
}
