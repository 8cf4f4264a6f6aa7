import CZlib
import Foundation

/// gzip (RFC 1952) decompression and compression through zlib.
///
///     let images = try Gzip.decompress(contentsOf: "/usr/share/.../train-images-idx3-ubyte.gz")
///
/// Decompression requires a complete gzip stream: a file that is not gzip, is corrupt, or ends early is an
/// error naming the file. Concatenated gzip members (as `cat a.gz b.gz` produces) are decompressed in turn.
public enum Gzip {
    /// Reads and decompresses the gzip file at `path`.
    public static func decompress(contentsOf path: String) throws -> [UInt8] {
        let bytes: [UInt8]
        do {
            bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        } catch {
            let nsError = error as NSError
            let code = (nsError.userInfo[NSUnderlyingErrorKey] as? NSError)?.code ?? nsError.code
            throw NativeError(library: .system, call: "read", code: code, message: nsError.localizedDescription,
                              context: "'\(path)'")
        }
        return try decompress(bytes, name: "'\(path)'")
    }

    /// Decompresses an in-memory gzip stream; `name` appears in error messages.
    public static func decompress(_ compressed: [UInt8], name: String = "gzip data") throws -> [UInt8] {
        guard compressed.count >= 2, compressed[0] == 0x1f, compressed[1] == 0x8b else {
            throw NativeError(library: .zlib, call: "inflate", code: Int(Z_DATA_ERROR),
                              message: "not a gzip stream (missing 1f 8b magic bytes)", context: name)
        }
        var stream = z_stream()
        try zcheck(inflateInit2_(&stream, 16 + MAX_WBITS, zlibVersion(), Int32(MemoryLayout<z_stream>.size)),
                   "inflateInit2", &stream, name)
        defer { inflateEnd(&stream) }

        var output: [UInt8] = []
        output.reserveCapacity(Swift.min(compressed.count * 4, 1 << 30))
        var chunk = [UInt8](repeating: 0, count: 1 << 18)
        let maximumFeed = Int(UInt32.max / 2)
        try compressed.withUnsafeBufferPointer { input in
            var consumed = 0
            var status = Z_OK
            while true {
                if stream.avail_in == 0 {
                    let feed = Swift.min(input.count - consumed, maximumFeed)
                    stream.next_in = UnsafeMutablePointer(mutating: input.baseAddress! + consumed)
                    stream.avail_in = UInt32(feed)
                    consumed += feed
                }
                let produced: Int = try chunk.withUnsafeMutableBufferPointer { out in
                    stream.next_out = out.baseAddress
                    stream.avail_out = UInt32(out.count)
                    status = inflate(&stream, Z_NO_FLUSH)
                    if status != Z_OK && status != Z_STREAM_END && status != Z_BUF_ERROR {
                        try zcheck(status, "inflate", &stream, name)
                    }
                    return out.count - Int(stream.avail_out)
                }
                output.append(contentsOf: chunk[0..<produced])
                let inputLeft = Int(stream.avail_in) + (input.count - consumed)
                if status == Z_STREAM_END {
                    if inputLeft == 0 { break }
                    // Another gzip member follows.
                    try zcheck(inflateReset(&stream), "inflateReset", &stream, name)
                    continue
                }
                if inputLeft == 0 && produced == 0 {
                    throw NativeError(library: .zlib, call: "inflate", code: Int(Z_BUF_ERROR),
                                      message: "unexpected end of gzip stream (file truncated?) after \(output.count) decompressed bytes",
                                      context: name)
                }
            }
        }
        return output
    }

    /// Compresses `bytes` into a single gzip member (used, for example, by tests writing `.gz` fixtures).
    public static func compress(_ bytes: [UInt8], level: Int32 = Z_DEFAULT_COMPRESSION) -> [UInt8] {
        var stream = z_stream()
        let initStatus = deflateInit2_(&stream, level, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY,
                                       zlibVersion(), Int32(MemoryLayout<z_stream>.size))
        precondition(initStatus == Z_OK, "deflateInit2 failed with zlib status \(initStatus)")
        defer { deflateEnd(&stream) }
        var output: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 18)
        let maximumFeed = Int(UInt32.max / 2)
        bytes.withUnsafeBufferPointer { input in
            var consumed = 0
            while true {
                if stream.avail_in == 0 && consumed < input.count {
                    let feed = Swift.min(input.count - consumed, maximumFeed)
                    stream.next_in = UnsafeMutablePointer(mutating: input.baseAddress! + consumed)
                    stream.avail_in = UInt32(feed)
                    consumed += feed
                }
                let flush = consumed == input.count ? Z_FINISH : Z_NO_FLUSH
                var status = Z_OK
                let produced: Int = chunk.withUnsafeMutableBufferPointer { out in
                    stream.next_out = out.baseAddress
                    stream.avail_out = UInt32(out.count)
                    status = deflate(&stream, flush)
                    return out.count - Int(stream.avail_out)
                }
                precondition(status == Z_OK || status == Z_STREAM_END || status == Z_BUF_ERROR,
                             "deflate failed with zlib status \(status)")
                output.append(contentsOf: chunk[0..<produced])
                if status == Z_STREAM_END { break }
            }
        }
        return output
    }

    private static func zcheck(_ status: Int32, _ call: String, _ stream: inout z_stream, _ name: String) throws {
        guard status != Z_OK else { return }
        let message: String
        if let text = stream.msg {
            message = String(cString: text)
        } else if let text = zError(status) {
            message = String(cString: text)
        } else {
            message = "zlib status \(status)"
        }
        throw NativeError(library: .zlib, call: call, code: Int(status), message: message, context: name)
    }
}
