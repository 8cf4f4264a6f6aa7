import CZlib
import LorsCheckpoint
import XCTest

/// The CRC-32 (libdeflate) and the threaded `CRC32.checksums(of:)` must give zlib's `crc32_z` value
/// exactly, so existing checkpoints and `scripts/check_checkpoint.py` (Python's zlib.crc32) still agree.
final class ChecksumSpeedPathTests: XCTestCase {
    private func zlibCRC(_ bytes: UnsafeRawBufferPointer, _ crc: UInt32 = 0) -> UInt32 {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return crc }
        return UInt32(truncatingIfNeeded: crc32_z(UInt(crc), base.assumingMemoryBound(to: UInt8.self), bytes.count))
    }

    func testEveryLengthAndAlignmentMatchesZlib() {
        var bytes = [UInt8](repeating: 0, count: 9000)
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        for i in bytes.indices { state = state &* 6_364_136_223_846_793_005 &+ 1; bytes[i] = UInt8(truncatingIfNeeded: state >> 33) }
        bytes.withUnsafeBytes { all in
            for offset in 0..<17 {
                for length in Array(0..<300) + [1023, 1024, 1025, 4096 + 7, 8000] {
                    let slice = UnsafeRawBufferPointer(rebasing: all[offset..<(offset + length)])
                    XCTAssertEqual(CRC32.checksum(slice), zlibCRC(slice), "offset \(offset) length \(length)")
                    XCTAssertEqual(CRC32.checksum(slice, continuing: 0xDEAD_BEEF), zlibCRC(slice, 0xDEAD_BEEF), "offset \(offset) length \(length)")
                }
            }
        }
    }

    func testThreadedChecksumsOfManyBuffersMatchSerial() {
        let sizes = [0, 1, 63, 64, 4 << 20, (4 << 20) + 3, (9 << 20) + 12, 1000]
        let arrays = sizes.map { n in (0..<n).map { UInt8(truncatingIfNeeded: $0 &* 2_654_435_761 >> 7) } }
        var buffers: [UnsafeRawBufferPointer] = []
        var pinned: [UnsafeMutableRawBufferPointer] = []
        for array in arrays {
            let memory = UnsafeMutableRawBufferPointer.allocate(byteCount: max(array.count, 1), alignment: 16)
            array.withUnsafeBytes { memory.copyMemory(from: $0) }
            pinned.append(memory)
            buffers.append(UnsafeRawBufferPointer(start: memory.baseAddress, count: array.count))
        }
        defer { pinned.forEach { $0.deallocate() } }
        XCTAssertEqual(CRC32.checksums(of: buffers), buffers.map { zlibCRC($0) })
    }
}
