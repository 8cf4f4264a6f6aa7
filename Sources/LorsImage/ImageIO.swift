import Foundation

extension ByteImage {
    /// Reads and decodes a PNG or JPEG file; the format is taken from the file's first bytes, not its name.
    ///
    /// `channels`: nil keeps the file's own kind (grey stays 1 channel, colour and palette images become 3), 1 or 3
    /// converts as PIL's `Image.open(path).convert("L")` / `.convert("RGB")` does (alpha is dropped, not composited).
    /// Every failure (missing file, unknown format, truncated or corrupt data) is an `ImageError` naming `path`.
    public static func read(contentsOf path: String, channels: Int? = nil) throws -> ByteImage {
        try decode(readBytes(path), channels: channels, name: path)
    }

    /// Decodes PNG or JPEG bytes; `name` stands for the file in errors.
    public static func decode(_ bytes: [UInt8], channels: Int? = nil, name: String = "<memory>") throws -> ByteImage {
        precondition(channels == nil || channels == 1 || channels == 3, "ByteImage: channels must be 1 or 3")
        switch ImageFormat.sniff(bytes) {
        case .png: return try PNGCodec.decode(bytes, channels: channels, name: name)
        case .jpeg: return try JPEGCodec.decode(bytes, channels: channels, name: name)
        case nil: throw ImageError(.unknownFormat(firstBytes: Array(bytes.prefix(8))), file: name)
        }
    }

    /// PNG bytes of this image (8-bit grey or RGB). Deterministic: the same pixels give the same bytes. `fast` trades
    /// a little size for speed (libpng's `PNG_IMAGE_FLAG_FAST`: about 3× faster on noisy images, a few % larger).
    public func encodePNG(fast: Bool = false) throws -> [UInt8] { try PNGCodec.encode(self, fast: fast) }

    /// Baseline JPEG bytes at `quality` (1...100); RGB images with `subsampling` (default 4:2:0, as PIL's default).
    public func encodeJPEG(quality: Int = 90, subsampling: JPEGSubsampling = .s420) throws -> [UInt8] {
        try JPEGCodec.encode(self, quality: quality, subsampling: subsampling)
    }

    /// The encoded bytes in `format` (`quality` applies to JPEG, `fastPNG` to PNG).
    public func encoded(as format: ImageFormat, quality: Int = 90, fastPNG: Bool = false) throws -> [UInt8] {
        format == .png ? try encodePNG(fast: fastPNG) : try encodeJPEG(quality: quality)
    }

    /// Encodes the image and writes it to `path` atomically (see `AtomicFile.write`).
    public func write(to path: String, format: ImageFormat, quality: Int = 90, fastPNG: Bool = false) throws {
        let bytes: [UInt8]
        do { bytes = try encoded(as: format, quality: quality, fastPNG: fastPNG) } catch let error as ImageError {
            throw ImageError(error.kind, file: path, imageID: error.imageID)
        }
        try AtomicFile.write(bytes, to: path)
    }

    /// The bytes of `path`, or an `ImageError.unreadable` naming it.
    static func readBytes(_ path: String) throws -> [UInt8] {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw ImageError(.unreadable(detail: "no such file"), file: path)
        }
        guard !isDirectory.boolValue else { throw ImageError(.unreadable(detail: "is a directory"), file: path) }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ImageError(.unreadable(detail: "permission denied or read error"), file: path)
        }
        return [UInt8](data)
    }
}

/// Writing files so that an interrupted writer never leaves a partial file under the final name.
public enum AtomicFile {
    /// Writes `bytes` to a hidden temporary file beside `path` (`.NAME.tmp-PID-N`), then renames it to `path`
    /// (rename(2) replaces an existing file in one step). The data is not fsync'd: the guarantee is against an
    /// interrupted process, not against a power loss.
    public static func write(_ bytes: [UInt8], to path: String) throws {
        let directory = (path as NSString).deletingLastPathComponent
        let name = (path as NSString).lastPathComponent
        let temporary = (directory.isEmpty ? "" : directory + "/") + ".\(name).tmp-\(getpid())-\(nextSerial())"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw ImageError(.writeFailed(detail: String(cString: strerror(errno))), file: path) }
        var written = 0
        var failure: Int32 = 0
        bytes.withUnsafeBytes { raw in
            while written < raw.count {
                let n = Foundation.write(fd, raw.baseAddress! + written, raw.count - written)
                if n < 0 {
                    if errno == EINTR { continue }
                    failure = errno
                    return
                }
                written += n
            }
        }
        if close(fd) != 0 && failure == 0 { failure = errno }
        if failure == 0 && Foundation.rename(temporary, path) != 0 { failure = errno }
        if failure != 0 {
            unlink(temporary)
            throw ImageError(.writeFailed(detail: String(cString: strerror(failure))), file: path)
        }
    }

    private static let serialLock = NSLock()
    nonisolated(unsafe) private static var serial = 0

    private static func nextSerial() -> Int {
        serialLock.lock(); defer { serialLock.unlock() }
        serial += 1
        return serial
    }
}
