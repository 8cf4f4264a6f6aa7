import CDeflate
import CZlib
import Dispatch

/// CRC-32 (the zlib / PNG / gzip polynomial 0xEDB88320, reflected, initial and final XOR 0xFFFFFFFF) of the
/// little-endian float32 bytes of a dataset in row-major order.
///
/// This is what Python's `zlib.crc32(numpy.asarray(ds, dtype="<f4").tobytes())` computes, so a checkpoint can be
/// verified without LORS (see `scripts/check_checkpoint.py`). Pieces computed by different ranks are joined with
/// `combine` (zlib's `crc32_combine`), so no rank needs the whole tensor to produce the dataset checksum. The bytes
/// are checksummed by libdeflate's `libdeflate_crc32` (same polynomial, initial and final value as zlib's `crc32`,
/// with carry-less multiply folding chosen at run time where the CPU has it).
public enum CRC32 {
    /// The checksum of no bytes.
    public static let empty: UInt32 = 0

    /// CRC-32 of `bytes`, continuing from `crc` (pass `empty` to start).
    public static func checksum(_ bytes: UnsafeRawBufferPointer, continuing crc: UInt32 = empty) -> UInt32 {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return crc }
        return libdeflate_crc32(crc, base, bytes.count)
    }

    /// CRC-32 of the float32 values' little-endian bytes (this machine is little-endian; checked at start-up).
    public static func checksum(_ values: UnsafeBufferPointer<Float>, continuing crc: UInt32 = empty) -> UInt32 {
        precondition(UInt32(1).littleEndian == 1, "LorsCheckpoint assumes a little-endian host")
        return checksum(UnsafeRawBufferPointer(values), continuing: crc)
    }

    /// CRC-32 of an array of floats.
    public static func checksum(_ values: [Float]) -> UInt32 {
        values.withUnsafeBufferPointer { checksum($0) }
    }

    /// CRC-32 of a byte array.
    public static func checksum(bytes: [UInt8]) -> UInt32 {
        bytes.withUnsafeBytes { checksum($0) }
    }

    /// The CRC-32 of `A + B` from `crc(A)`, `crc(B)` and the byte length of `B`.
    public static func combine(_ first: UInt32, _ second: UInt32, secondLength: Int) -> UInt32 {
        guard secondLength > 0 else { return first }
        return UInt32(truncatingIfNeeded: crc32_combine(UInt(first), UInt(second), Int(secondLength)))
    }

    /// Bytes per piece when `checksums(of:)` splits buffers across threads.
    static let pieceBytes = 4 << 20

    /// The CRC-32 of each buffer, the same values as `checksum(_:)`, computed on all cores: buffers are cut into
    /// 4 MiB pieces, the pieces checksummed in parallel and joined with `combine`.
    public static func checksums(of buffers: [UnsafeRawBufferPointer]) -> [UInt32] {
        var pieces: [(buffer: Int, start: Int, end: Int)] = []
        for (index, buffer) in buffers.enumerated() {
            var start = 0
            repeat {
                let end = Swift.min(buffer.count, start + pieceBytes)
                pieces.append((index, start, end))
                start = end
            } while start < buffer.count
        }
        let partial = UnsafeMutableBufferPointer<UInt32>.allocate(capacity: Swift.max(pieces.count, 1))
        defer { partial.deallocate() }
        DispatchQueue.concurrentPerform(iterations: pieces.count) { i in
            let piece = pieces[i]
            let buffer = buffers[piece.buffer]
            partial[i] = piece.start == piece.end ? empty : checksum(UnsafeRawBufferPointer(rebasing: buffer[piece.start..<piece.end]))
        }
        var result = [UInt32](repeating: empty, count: buffers.count)
        for (i, piece) in pieces.enumerated() {
            result[piece.buffer] = combine(result[piece.buffer], partial[i], secondLength: piece.end - piece.start)
        }
        return result
    }
}
