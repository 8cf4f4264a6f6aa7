import CZlib
import LorsCheckpoint
import LorsTestSupport
import XCTest

/// `CRC32` (libdeflate's `libdeflate_crc32`) against zlib's `crc32` on random bytes: every length class around the
/// 16- and 64-byte folding blocks, unaligned starts, a buffer over 1 MiB, and incremental (`continuing:`) updates.
/// The bytes come from a fresh random seed each run; the seed is in every failure message.
final class ChecksumLibdeflateTests: XCTestCase {
    private let seed = UInt64.random(in: .min ... .max)

    private func randomBytes(_ count: Int, _ generator: inout SplitMix) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        bytes.withUnsafeMutableBytes { raw in
            var i = 0
            while i < count {
                var word = generator.next()
                let n = Swift.min(8, count - i)
                withUnsafeBytes(of: &word) { raw.baseAddress!.advanced(by: i).copyMemory(from: $0.baseAddress!, byteCount: n) }
                i += n
            }
        }
        return bytes
    }

    /// zlib's `crc32`, fed in pieces of at most 1 GiB (its length is a 32-bit `uInt`).
    private func zlibCRC(_ bytes: UnsafeRawBufferPointer, _ crc: UInt32 = 0) -> UInt32 {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return crc }
        var value = UInt(crc)
        var offset = 0
        while offset < bytes.count {
            let n = Swift.min(bytes.count - offset, 1 << 30)
            value = crc32(value, base.advanced(by: offset).assumingMemoryBound(to: UInt8.self), UInt32(n))
            offset += n
        }
        return UInt32(truncatingIfNeeded: value)
    }

    func testPublishedCheckValues() {
        XCTAssertEqual(CRC32.checksum(bytes: Array("123456789".utf8)), 0xCBF4_3926)
        XCTAssertEqual(CRC32.checksum(bytes: []), 0)
        XCTAssertEqual(CRC32.checksum(bytes: Array("The quick brown fox jumps over the lazy dog".utf8)), 0x414F_A339)
        Array("123456789".utf8).withUnsafeBytes { XCTAssertEqual(zlibCRC($0), 0xCBF4_3926) }
    }

    func testRandomBuffersOfManyLengthsAndUnalignedStartsMatchZlib() {
        var generator = SplitMix(seed: seed)
        let lengths = [0, 1, 2, 3, 4, 7, 8, 15, 16, 17, 31, 32, 33, 47, 48, 63, 64, 65, 127, 128, 129, 255, 256, 257,
                       1000, 1023, 1024, 1025, 4095, 4096, 4097, 65_535, 65_537, (1 << 20) + 3]
        let maxOffset = 17
        let bytes = randomBytes(lengths.max()! + maxOffset, &generator)
        bytes.withUnsafeBytes { all in
            for length in lengths {
                for offset in 0..<maxOffset {
                    let slice = UnsafeRawBufferPointer(rebasing: all[offset..<(offset + length)])
                    let start = UInt32(truncatingIfNeeded: generator.next())
                    XCTAssertEqual(CRC32.checksum(slice), zlibCRC(slice), "seed \(seed) length \(length) offset \(offset)")
                    XCTAssertEqual(CRC32.checksum(slice, continuing: start), zlibCRC(slice, start),
                                   "seed \(seed) length \(length) offset \(offset) continuing from \(start)")
                }
            }
        }
    }

    func testChunkedUpdatesMatchZlib() {
        var generator = SplitMix(seed: seed)
        let bytes = randomBytes((1 << 20) + 3, &generator)
        bytes.withUnsafeBytes { all in
            let whole = zlibCRC(all)
            XCTAssertEqual(CRC32.checksum(all), whole, "seed \(seed)")
            for round in 0..<8 {
                // Random cuts, from single bytes to tens of KiB, so pieces start and end at every alignment.
                let maxPiece = round < 4 ? 70 : 70_000
                var crc = CRC32.empty
                var combined = CRC32.empty
                var offset = 0
                var pieces = 0
                while offset < all.count {
                    let n = Swift.min(all.count - offset, Int.random(in: 0...maxPiece, using: &generator))
                    let piece = UnsafeRawBufferPointer(rebasing: all[offset..<(offset + n)])
                    crc = CRC32.checksum(piece, continuing: crc)
                    combined = CRC32.combine(combined, CRC32.checksum(piece), secondLength: n)
                    offset += n
                    pieces += 1
                    if pieces % 1000 == 0 {
                        XCTAssertEqual(crc, zlibCRC(UnsafeRawBufferPointer(rebasing: all[0..<offset])), "seed \(seed) round \(round)")
                    }
                }
                XCTAssertEqual(crc, whole, "seed \(seed) round \(round): \(pieces) continuing updates")
                XCTAssertEqual(combined, whole, "seed \(seed) round \(round): \(pieces) combined pieces")
            }
        }
    }

    func testFloatChecksumsAndThreadedChecksumsOfUnalignedBuffersMatchZlib() {
        var generator = SplitMix(seed: seed)
        let floats = (0..<((1 << 18) + 5)).map { _ in Float(bitPattern: UInt32(truncatingIfNeeded: generator.next())) }
        floats.withUnsafeBufferPointer { values in
            let raw = UnsafeRawBufferPointer(values)
            XCTAssertEqual(CRC32.checksum(values), zlibCRC(raw), "seed \(seed)")
            let half = values.count / 2
            let first = CRC32.checksum(UnsafeBufferPointer(rebasing: values[0..<half]))
            XCTAssertEqual(CRC32.checksum(UnsafeBufferPointer(rebasing: values[half...]), continuing: first), zlibCRC(raw), "seed \(seed)")
        }
        XCTAssertEqual(CRC32.checksum(floats), floats.withUnsafeBytes { zlibCRC($0) }, "seed \(seed)")

        let bytes = randomBytes((9 << 20) + 40, &generator)
        bytes.withUnsafeBytes { all in
            let ranges = [0..<0, 1..<2, 3..<(3 + (4 << 20)), 5..<(5 + (4 << 20) + 1), 7..<(7 + (9 << 20) + 13), 11..<4106]
            let buffers = ranges.map { UnsafeRawBufferPointer(rebasing: all[$0]) }
            XCTAssertEqual(CRC32.checksums(of: buffers), buffers.map { zlibCRC($0) }, "seed \(seed)")
        }
    }

    func testOneFlippedBitChangesTheChecksum() {
        var generator = SplitMix(seed: seed)
        var bytes = randomBytes(4099, &generator)
        let before = CRC32.checksum(bytes: bytes)
        let index = Int.random(in: bytes.indices, using: &generator)
        bytes[index] ^= UInt8(1) << UInt8.random(in: 0..<8, using: &generator)
        let after = CRC32.checksum(bytes: bytes)
        XCTAssertNotEqual(before, after, "seed \(seed) byte \(index)")
        XCTAssertEqual(after, bytes.withUnsafeBytes { zlibCRC($0) }, "seed \(seed)")
    }
}
