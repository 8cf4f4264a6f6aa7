import Foundation
import XCTest
import LorsTestSupport

/// `lors eval-coco` against pycocotools on a val split of `lors make-detection` (real boxes of visible pixels, crowd
/// items) with detections made from its ground truth by scripts/make_coco_eval_synth_fixtures.py: jittered boxes
/// (IoU > 0.9, 0.5-0.75, < 0.5), wrong categories, missed objects, duplicates, false positives, tied scores, detections
/// on and inside crowd boxes. The split is regenerated here with the script's arguments; its instances_val.json must
/// be byte-identical to the one the script evaluated (SHA-256), then the 12 numbers of both maxDets modes must equal
/// pycocotools' to 1e-6 and the printed lines must be the same.
final class COCOEvalSynthesisTests: XCTestCase {
    static let fashionMNIST = "/usr/share/datasets/fashion-mnist"

    var directory: URL!

    override func setUpWithError() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("lors-eval-synth-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: directory)
    }

    func lors(_ arguments: [String]) throws -> LorsRun { try runLors(arguments) }

    func testEvalCOCOEqualsPycocotoolsOnAGeneratedValSplit() throws {
        guard FileManager.default.fileExists(atPath: Self.fashionMNIST + "/t10k-images-idx3-ubyte.gz") else {
            XCTFail("Fashion-MNIST is not installed at \(Self.fashionMNIST) (bash cluster/setup.sh --deps-only installs dataset-fashion-mnist)")
            return
        }
        let fixtures = try COCOEvalReferenceTests.fixtures
        let data = try Data(contentsOf: fixtures.appendingPathComponent("synth_val_expected.json"))
        let expected = try XCTUnwrap(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        let arguments = try XCTUnwrap(expected["make_detection"] as? [String])
        XCTAssertEqual(arguments.first, "--train")

        let made = try lors(["make-detection", "--out", directory.path] + arguments)
        XCTAssertEqual(made.status, 0, made.stderr)
        let gt = directory.appendingPathComponent(try XCTUnwrap(expected["gt"] as? String))
        let gtBytes = try Data(contentsOf: gt)
        XCTAssertEqual(SHA256.hex(gtBytes), try XCTUnwrap(expected["gt_sha256"] as? String),
                       "make-detection \(arguments.joined(separator: " ")) no longer writes the GT the fixture was made from; rerun scripts/make_coco_eval_synth_fixtures.py")
        let dt = fixtures.appendingPathComponent(try XCTUnwrap(expected["dt"] as? String)).path

        let modes: [(name: String, keys: [String])] = [
            ("standard", ["AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl"]),
            ("mmdetection", ["AP", "AP50", "AP75", "APs", "APm", "APl", "AR@100", "AR@300", "AR@1000", "ARs", "ARm", "ARl"]),
        ]
        for (name, keys) in modes {
            let mode = try XCTUnwrap(expected[name] as? [String: Any])
            let maxDets = try XCTUnwrap(mode["maxDets"] as? [Int]).map(String.init).joined(separator: ",")
            let values = try XCTUnwrap(mode["values"] as? [String: Any])
            XCTAssertEqual(Set(values.keys), Set(keys), name)

            let json = try lors(["eval-coco", "--gt", gt.path, "--dt", dt, "--max-dets", maxDets, "--json"])
            XCTAssertEqual(json.status, 0, json.stderr)
            let object = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
            XCTAssertEqual(Set(object.keys), Set(keys), name)
            for key in keys {
                let want = try XCTUnwrap((values[key] as? NSNumber)?.doubleValue, key)
                let got = try XCTUnwrap((object[key] as? NSNumber)?.doubleValue, key)
                XCTAssertEqual(got, want, accuracy: 1e-6, "\(name) \(key)")
            }

            let text = try lors(["eval-coco", "--gt", gt.path, "--dt", dt, "--max-dets", maxDets])
            XCTAssertEqual(text.status, 0, text.stderr)
            XCTAssertEqual(text.stdout, try XCTUnwrap(mode["lines"] as? [String]).joined(separator: "\n") + "\n", name)
        }
    }

    func testSHA256KnownAnswers() {
        XCTAssertEqual(SHA256.hex(Data()), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        XCTAssertEqual(SHA256.hex(Data("abc".utf8)), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        XCTAssertEqual(SHA256.hex(Data("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8)),
                       "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        XCTAssertEqual(SHA256.hex(Data(repeating: 0x61, count: 1_000_000)),
                       "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }
}

/// FIPS 180-4 SHA-256, for checking that a regenerated file is the one a fixture was made from.
enum SHA256 {
    static let k: [UInt32] = [
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
        0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
        0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
        0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
        0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
        0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
        0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
        0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
    ]

    static func hex(_ data: Data) -> String {
        var h: [UInt32] = [0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19]
        var message = [UInt8](data)
        let bitLength = UInt64(message.count) * 8
        message.append(0x80)
        while message.count % 64 != 56 { message.append(0) }
        for shift in stride(from: 56, through: 0, by: -8) { message.append(UInt8(truncatingIfNeeded: bitLength >> UInt64(shift))) }
        func rotr(_ x: UInt32, _ n: UInt32) -> UInt32 { (x >> n) | (x << (32 - n)) }
        var w = [UInt32](repeating: 0, count: 64)
        for chunk in stride(from: 0, to: message.count, by: 64) {
            for i in 0..<16 {
                let j = chunk + 4 * i
                w[i] = UInt32(message[j]) << 24 | UInt32(message[j + 1]) << 16 | UInt32(message[j + 2]) << 8 | UInt32(message[j + 3])
            }
            for i in 16..<64 {
                let s0 = rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ (w[i - 15] >> 3)
                let s1 = rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ (w[i - 2] >> 10)
                w[i] = w[i - 16] &+ s0 &+ w[i - 7] &+ s1
            }
            var (a, b, c, d, e, f, g, hh) = (h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7])
            for i in 0..<64 {
                let t1 = hh &+ (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) &+ ((e & f) ^ (~e & g)) &+ k[i] &+ w[i]
                let t2 = (rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) &+ ((a & b) ^ (a & c) ^ (b & c))
                (hh, g, f, e, d, c, b, a) = (g, f, e, d &+ t1, c, b, a, t1 &+ t2)
            }
            for (i, v) in [a, b, c, d, e, f, g, hh].enumerated() { h[i] = h[i] &+ v }
        }
        return h.map { word in (0..<8).map { String((word >> (28 - 4 * UInt32($0))) & 0xf, radix: 16) }.joined() }.joined()
    }
}
