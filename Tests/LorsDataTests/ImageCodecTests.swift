import Foundation
import XCTest
import LorsImage

/// PNG and JPEG decoding against PIL's pixels (fixtures from scripts/make_image_fixtures.py), encoding round trips,
/// and the errors for missing, truncated and garbage files.
final class ImageCodecTests: XCTestCase {
    var directory = ""

    override func setUpWithError() throws { directory = try makeTemporaryDirectory(name) }
    override func tearDown() { try? FileManager.default.removeItem(atPath: directory) }

    private func path(_ name: String) -> String { (directory as NSString).appendingPathComponent(name) }

    struct Fixture {
        let path: String
        let width: Int, height: Int, channels: Int
        let format: String
        /// PIL's `convert("L")` and `convert("RGB")` bytes.
        let grey: [UInt8], rgb: [UInt8]
    }

    private func fixtures() throws -> [String: Fixture] {
        let root = try XCTUnwrap(Bundle.module.url(forResource: "Fixtures", withExtension: nil), "Fixtures resource missing")
            .appendingPathComponent("images")
        let manifest = try JSONSerialization.jsonObject(with: Data(contentsOf: root.appendingPathComponent("manifest.json")))
        let images = try XCTUnwrap((manifest as? [String: Any])?["images"] as? [String: [String: Any]])
        var out: [String: Fixture] = [:]
        for (name, entry) in images {
            func raw(_ mode: String) throws -> [UInt8] {
                [UInt8](try Data(contentsOf: root.appendingPathComponent("\(name).\(mode).raw")))
            }
            out[name] = Fixture(path: root.appendingPathComponent(name).path, width: entry["width"] as! Int,
                                height: entry["height"] as! Int, channels: entry["channels"] as! Int,
                                format: entry["format"] as! String, grey: try raw("L"), rgb: try raw("RGB"))
        }
        XCTAssertGreaterThanOrEqual(out.count, 10, "fixtures missing; run scripts/make_image_fixtures.py")
        return out
    }

    /// The largest absolute difference between two byte arrays of the same length.
    private func maxDifference(_ a: [UInt8], _ b: [UInt8]) -> Int {
        XCTAssertEqual(a.count, b.count)
        return zip(a, b).map { abs(Int($0) - Int($1)) }.max() ?? 0
    }

    private func check(_ fixture: Fixture, name: String, tolerance: Int) throws {
        let native = try ByteImage.read(contentsOf: fixture.path)
        XCTAssertEqual([native.width, native.height, native.channels], [fixture.width, fixture.height, fixture.channels], name)
        let rgb = try ByteImage.read(contentsOf: fixture.path, channels: 3)
        let grey = try ByteImage.read(contentsOf: fixture.path, channels: 1)
        XCTAssertEqual(rgb.channels, 3)
        XCTAssertEqual(grey.channels, 1)
        XCTAssertLessThanOrEqual(maxDifference(rgb.pixels, fixture.rgb), tolerance, "\(name) as RGB")
        XCTAssertLessThanOrEqual(maxDifference(grey.pixels, fixture.grey), tolerance, "\(name) as grey")
        XCTAssertEqual(native.pixels, fixture.channels == 3 ? rgb.pixels : grey.pixels, "\(name) in its own channels")
        // Bytes decode as the file does.
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: fixture.path)))
        XCTAssertEqual(try ByteImage.decode(bytes, channels: 3), rgb, name)
    }

    func testPNGPixelsEqualPIL() throws {
        let all = try fixtures()
        let names = ["grey.png", "rgb.png", "rgba.png", "grey_alpha.png", "palette.png", "bilevel.png"]
        for name in names {
            try check(try XCTUnwrap(all[name], name), name: name, tolerance: 0)
        }
    }

    /// 16-bit samples are scaled to 8 bits (v·255/65535); PIL takes the high byte of 16-bit RGB: at most 1 apart.
    func testSixteenBitPNGWithinOneLevel() throws {
        let all = try fixtures()
        for name in ["rgb16.png", "grey16.png"] {
            try check(try XCTUnwrap(all[name], name), name: name, tolerance: 1)
        }
    }

    func testJPEGPixelsWithinOneLevelOfPIL() throws {
        let all = try fixtures()
        let names = ["grey.jpg", "rgb420.jpg", "rgb444.jpg", "rgb422_progressive.jpg"]
        for name in names {
            try check(try XCTUnwrap(all[name], name), name: name, tolerance: 1)
        }
    }

    private func sample(channels: Int, width: Int = 19, height: Int = 11) -> ByteImage {
        var image = ByteImage(width: width, height: height, channels: channels)
        for y in 0..<height {
            for x in 0..<width {
                for c in 0..<channels { image[x, y, c] = UInt8((x * 37 + y * 11 + c * 71 + x * y) % 256) }
            }
        }
        return image
    }

    func testPNGRoundTripIsExact() throws {
        for channels in [1, 3] {
            let image = sample(channels: channels)
            let bytes = try image.encodePNG()
            XCTAssertEqual(ImageFormat.sniff(bytes), .png)
            XCTAssertEqual(try ByteImage.decode(bytes), image)
            XCTAssertEqual(try image.encodePNG(), bytes, "PNG encoding is deterministic")
            XCTAssertEqual(try ByteImage.decode(try image.encodePNG(fast: true)), image)
            let file = path("round\(channels).png")
            try image.write(to: file, format: .png)
            XCTAssertEqual(try ByteImage.read(contentsOf: file), image)
        }
    }

    func testJPEGRoundTripIsClose() throws {
        // A smooth image: JPEG at quality 100 and 4:4:4 keeps it within a few levels.
        var image = ByteImage(width: 32, height: 24, channels: 3)
        for y in 0..<24 { for x in 0..<32 { for c in 0..<3 { image[x, y, c] = UInt8(40 + x * 4 + y * 2 + c * 20) } } }
        let bytes = try image.encodeJPEG(quality: 100, subsampling: .s444)
        XCTAssertEqual(ImageFormat.sniff(bytes), .jpeg)
        let decoded = try ByteImage.decode(bytes)
        XCTAssertEqual([decoded.width, decoded.height, decoded.channels], [32, 24, 3])
        XCTAssertLessThanOrEqual(maxDifference(decoded.pixels, image.pixels), 3)
        let grey = image.converted(toChannels: 1)
        let greyDecoded = try ByteImage.decode(try grey.encodeJPEG(quality: 95))
        XCTAssertEqual(greyDecoded.channels, 1)
        XCTAssertLessThanOrEqual(maxDifference(greyDecoded.pixels, grey.pixels), 3)
        XCTAssertLessThan(try image.encodeJPEG(quality: 20).count, bytes.count, "lower quality, fewer bytes")
    }

    func testMissingFileNamesIt() {
        let missing = path("absent.png")
        assertThrowsNaming(missing, "no such file") { _ = try ByteImage.read(contentsOf: missing) }
        assertThrowsNaming(directory, "is a directory") { _ = try ByteImage.read(contentsOf: directory) }
    }

    func testTruncatedFilesNameTheFile() throws {
        let all = try fixtures()
        for name in ["rgb420.jpg", "grey.jpg", "rgb.png", "palette.png"] {
            let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: try XCTUnwrap(all[name]).path)))
            for keep in [bytes.count / 2, bytes.count * 3 / 4, 40, 12] {
                let cut = path("cut\(keep)-" + name)
                try Data(bytes.prefix(keep)).write(to: URL(fileURLWithPath: cut))
                assertThrowsNaming(cut, name.hasSuffix(".png") ? "PNG" : "JPEG") { _ = try ByteImage.read(contentsOf: cut) }
            }
        }
        // Cut inside the entropy-coded data: libjpeg's "premature end" warning is an error here.
        let jpeg = [UInt8](try Data(contentsOf: URL(fileURLWithPath: try XCTUnwrap(all["rgb444.jpg"]).path)))
        let cut = path("half.jpg")
        try Data(jpeg.prefix(jpeg.count - 200)).write(to: URL(fileURLWithPath: cut))
        assertThrowsNaming(cut, "truncated JPEG") { _ = try ByteImage.read(contentsOf: cut) }
    }

    func testGarbageFilesNameTheFile() throws {
        var state: UInt32 = 12345
        let garbage: [UInt8] = (0..<4096).map { _ in state = state &* 1_103_515_245 &+ 12345; return UInt8(state >> 24) }
        let plain = path("garbage.jpg")
        try Data(garbage).write(to: URL(fileURLWithPath: plain))
        assertThrowsNaming(plain, "not a PNG or JPEG file") { _ = try ByteImage.read(contentsOf: plain) }
        let empty = path("empty.png")
        try Data().write(to: URL(fileURLWithPath: empty))
        assertThrowsNaming(empty, "the file is empty") { _ = try ByteImage.read(contentsOf: empty) }
        // A valid signature followed by garbage.
        let jpeg = path("garbage-after-soi.jpg")
        try Data([0xFF, 0xD8, 0xFF] + garbage).write(to: URL(fileURLWithPath: jpeg))
        assertThrowsNaming(jpeg, "JPEG") { _ = try ByteImage.read(contentsOf: jpeg) }
        let png = path("garbage-after-signature.png")
        try Data([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A] + garbage).write(to: URL(fileURLWithPath: png))
        assertThrowsNaming(png, "corrupt PNG") { _ = try ByteImage.read(contentsOf: png) }
        // Garbage in the middle of a real PNG's compressed data (CRC mismatch).
        let all = try fixtures()
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: try XCTUnwrap(all["rgb.png"]).path)))
        for i in (bytes.count / 2)..<(bytes.count / 2 + 64) { bytes[i] = garbage[i % garbage.count] }
        let damaged = path("damaged.png")
        try Data(bytes).write(to: URL(fileURLWithPath: damaged))
        assertThrowsNaming(damaged, "PNG") { _ = try ByteImage.read(contentsOf: damaged) }
    }

    func testErrorCarriesImageID() {
        let missing = path("nothing.jpg")
        do {
            _ = try ByteImage.read(contentsOf: missing)
            XCTFail("expected an error")
        } catch let error as ImageError {
            let text = "\(error.withImageID(42))"
            XCTAssertTrue(text.contains(missing) && text.contains("image 42"), text)
        } catch {
            XCTFail("unexpected error \(error)")
        }
    }

    func testConversionFollowsPIL() {
        let rgb = ByteImage(width: 2, height: 1, channels: 3, pixels: [255, 0, 0, 10, 200, 30])
        // PIL: Image.new("RGB", ...).convert("L") gives 76 for pure red; (10, 200, 30) → 124.
        XCTAssertEqual(rgb.converted(toChannels: 1).pixels, [76, 124])
        XCTAssertEqual(ByteImage(width: 1, height: 1, channels: 1, pixels: [7]).converted(toChannels: 3).pixels, [7, 7, 7])
    }

    func testAtomicWriteLeavesNoTemporaryFile() throws {
        let target = path("atomic.bin")
        try AtomicFile.write([1, 2, 3], to: target)
        try AtomicFile.write([4, 5], to: target)
        XCTAssertEqual([UInt8](try Data(contentsOf: URL(fileURLWithPath: target))), [4, 5])
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: directory), ["atomic.bin"])
        assertThrowsNaming(path("no/such/dir/x.png"), "cannot write") {
            try AtomicFile.write([1], to: path("no/such/dir/x.png"))
        }
    }
}
