import Foundation
import LorsNative
import XCTest

/// `JSONValue`, the writer of every JSON output: key order, escaping, numbers, non-finite values, layouts, and that
/// Foundation's parser reads all of it back.
final class JSONValueTests: XCTestCase {
    private func parse(_ text: String) throws -> Any {
        try JSONSerialization.jsonObject(with: Data(text.utf8), options: [.fragmentsAllowed])
    }

    func testObjectKeepsInsertionOrder() throws {
        var object: JSONObject = ["zeta": 1, "alpha": 2, "mid": 3]
        XCTAssertEqual(object.text(), #"{"zeta":1,"alpha":2,"mid":3}"#)
        object["beta"] = 4
        object["zeta"] = "replaced in place"
        XCTAssertEqual(object.keys, ["zeta", "alpha", "mid", "beta"])
        object["alpha"] = nil
        object["alpha"] = 5
        XCTAssertEqual(object.text(), #"{"zeta":"replaced in place","mid":3,"beta":4,"alpha":5}"#)
        XCTAssertEqual(object["mid"], .int(3))
        // A repeated key keeps its first position and its last value.
        XCTAssertEqual(JSONObject([("a", 1), ("b", 2), ("a", 3)]).text(), #"{"a":3,"b":2}"#)
        // A dictionary has no order: its keys are sorted.
        XCTAssertEqual(JSONObject(sortingKeysOf: ["b": 1, "c": 2, "a": 3]).keys, ["a", "b", "c"])
        // Nested objects keep their order too, and the text parses.
        let nested: JSONValue = ["outer": ["y": 1, "x": [true, false, .null]], "last": "z"]
        XCTAssertEqual(nested.text(), #"{"outer":{"y":1,"x":[true,false,null]},"last":"z"}"#)
        let parsed = try XCTUnwrap(try parse(nested.text()) as? [String: Any])
        XCTAssertEqual((parsed["outer"] as? [String: Any])?["y"] as? Int, 1)
    }

    func testStringsAreEscapedPerRFC8259() throws {
        XCTAssertEqual(JSONValue.quoted("say \"hi\" \\ bye"), #""say \"hi\" \\ bye""#)
        XCTAssertEqual(JSONValue.quoted("a\nb\rc\td\u{08}e\u{0C}f"), #""a\nb\rc\td\be\ff""#)
        XCTAssertEqual(JSONValue.quoted("\u{00}\u{01}\u{1F}"), #""\u0000\u0001\u001f""#)
        // Not escaped: DEL, "/", non-ASCII and characters outside the BMP (written as UTF-8).
        XCTAssertEqual(JSONValue.quoted("\u{7F}/é→😀"), "\"\u{7F}/é→😀\"")
        let tricky = "path/to \"x\"\\\n\u{01}\t é 😀 \u{2028}"
        XCTAssertEqual(try parse(JSONValue.string(tricky).text()) as? String, tricky)
        // Keys are escaped like values.
        let object: JSONObject = [tricky: 1]
        XCTAssertEqual((try parse(object.text()) as? [String: Any])?.keys.first, tricky)
    }

    func testIntegersAndDoublesAreWrittenApart() throws {
        XCTAssertEqual(JSONValue.int(3).text(), "3")
        XCTAssertEqual(JSONValue.double(3).text(), "3.0")
        XCTAssertEqual(JSONValue.int(-42).text(), "-42")
        XCTAssertEqual(JSONValue.int(Int.max).text(), "9223372036854775807")
        // Shortest round-trip digits.
        XCTAssertEqual(JSONValue.double(0.1).text(), "0.1")
        XCTAssertEqual(JSONValue.double(1.0 / 3).text(), "0.3333333333333333")
        XCTAssertEqual(JSONValue.double(1e-5).text(), "1e-05")
        XCTAssertEqual(JSONValue.double(1e16).text(), "1e+16")
        XCTAssertEqual(JSONValue.double(-0.0).text(), "-0.0")
        XCTAssertEqual(JSONValue.double(5e-324).text(), "5e-324")
        XCTAssertEqual(JSONValue.double(.greatestFiniteMagnitude).text(), "1.7976931348623157e+308")
        // Every double reads back exactly through a correctly rounding reader (Swift's `Double(String)`, like Python's
        // json); Foundation's JSONSerialization on Linux is not correctly rounded (off by a few units in the last place
        // at large exponents), so it is held to 1e-13 relative.
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        for _ in 0..<2000 {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            let value = Double(bitPattern: state)
            guard value.isFinite else { continue }
            let text = JSONValue.double(value).text()
            XCTAssertEqual(Double(text), value, text)
            XCTAssertTrue(text.contains(".") || text.contains("e"), "a double must not read as an integer: \(text)")
            let parsed = try XCTUnwrap(try parse("[\(text)]") as? [Any])
            XCTAssertEqual((parsed[0] as? NSNumber)?.doubleValue ?? .nan, value, accuracy: abs(value) * 1e-13, text)
        }
        let numbers: JSONObject = ["n": .int(7), "x": .double(7), "y": .double(0.1)]
        XCTAssertEqual(numbers.text(), #"{"n":7,"x":7.0,"y":0.1}"#)
        let record = try XCTUnwrap(try parse(numbers.text()) as? [String: Any])
        XCTAssertEqual(record["n"] as? Int, 7)
        XCTAssertEqual((record["x"] as? NSNumber)?.doubleValue, 7)
        XCTAssertEqual((record["y"] as? NSNumber)?.doubleValue, 0.1)
    }

    func testNonFiniteDoublesAreWrittenAsNull() throws {
        for value in [Double.nan, .infinity, -.infinity, -Double.nan, .signalingNaN] {
            XCTAssertEqual(JSONValue.double(value).text(), "null", "\(value)")
            XCTAssertEqual(JSONValue.number(value), "null")
        }
        let record: JSONObject = ["loss": .double(.nan), "lr": .double(0.001), "norm": .double(.infinity)]
        XCTAssertEqual(record.text(), #"{"loss":null,"lr":0.001,"norm":null}"#)
        let parsed = try XCTUnwrap(try parse(record.text()) as? [String: Any])
        XCTAssertTrue(parsed["loss"] is NSNull)
        XCTAssertTrue(parsed["norm"] is NSNull)
        XCTAssertEqual(parsed["lr"] as? Double, 0.001)
    }

    func testIndentedLayout() throws {
        let value: JSONValue = [
            "name": "bench", "shape": [3, 16], "empty": [:], "none": [],
            "rows": [["n": 1, "ok": true], ["n": 2, "ok": false]],
            "phases": ["write.data": 0.5],
        ]
        XCTAssertEqual(value.text(.indented), """
            {
              "name": "bench",
              "shape": [3, 16],
              "empty": {},
              "none": [],
              "rows": [
                {
                  "n": 1,
                  "ok": true
                },
                {
                  "n": 2,
                  "ok": false
                }
              ],
              "phases": {
                "write.data": 0.5
              }
            }
            """)
        XCTAssertEqual(value.text(), #"{"name":"bench","shape":[3,16],"empty":{},"none":[],"rows":[{"n":1,"ok":true},"#
                       + #"{"n":2,"ok":false}],"phases":{"write.data":0.5}}"#)
        let parsed = try XCTUnwrap(try parse(value.text(.indented)) as? [String: Any])
        XCTAssertEqual(parsed["shape"] as? [Int], [3, 16])
        XCTAssertEqual((parsed["rows"] as? [[String: Any]])?.count, 2)
        XCTAssertFalse(value.text().contains("\n"), "compact text is one line")
    }
}
