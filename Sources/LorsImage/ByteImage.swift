/// An 8-bit image: `height` rows of `width` pixels of `channels` bytes (1 = grey, 3 = RGB), stored row-major and
/// interleaved (HWC): the byte of channel `c` of pixel (x, y) is `pixels[(y * width + x) * channels + c]`.
public struct ByteImage: Equatable, Sendable {
    public let width: Int
    public let height: Int
    /// 1 (grey) or 3 (RGB).
    public let channels: Int
    /// `height * width * channels` bytes, row-major HWC.
    public var pixels: [UInt8]

    public init(width: Int, height: Int, channels: Int, pixels: [UInt8]) {
        precondition(width > 0 && height > 0, "ByteImage: size \(width)×\(height) must be positive")
        precondition(channels == 1 || channels == 3, "ByteImage: channels must be 1 or 3, got \(channels)")
        precondition(pixels.count == width * height * channels,
                     "ByteImage: \(pixels.count) bytes for \(width)×\(height)×\(channels)")
        self.width = width
        self.height = height
        self.channels = channels
        self.pixels = pixels
    }

    /// An image with every byte `value`.
    public init(width: Int, height: Int, channels: Int, filledWith value: UInt8 = 0) {
        self.init(width: width, height: height, channels: channels,
                  pixels: [UInt8](repeating: value, count: max(0, width * height * channels)))
    }

    /// Bytes per row.
    public var rowBytes: Int { width * channels }

    /// Channel `c` of pixel (x, y).
    public subscript(x: Int, y: Int, c: Int) -> UInt8 {
        get { pixels[(y * width + x) * channels + c] }
        set { pixels[(y * width + x) * channels + c] = newValue }
    }

    /// The image with `channels` channels, converted as PIL's `Image.convert` does: grey → RGB repeats the grey
    /// value, RGB → grey is ITU-R 601-2 luma `L = R·299/1000 + G·587/1000 + B·114/1000` in PIL's fixed-point form.
    public func converted(toChannels target: Int) -> ByteImage {
        precondition(target == 1 || target == 3, "ByteImage: channels must be 1 or 3, got \(target)")
        if target == channels { return self }
        let count = width * height
        var out = [UInt8](repeating: 0, count: count * target)
        if target == 3 {
            for i in 0..<count {
                let v = pixels[i]
                out[3 * i] = v; out[3 * i + 1] = v; out[3 * i + 2] = v
            }
        } else {
            for i in 0..<count {
                out[i] = ByteImage.luma(pixels[3 * i], pixels[3 * i + 1], pixels[3 * i + 2])
            }
        }
        return ByteImage(width: width, height: height, channels: target, pixels: out)
    }

    /// PIL's RGB → L: `(R·19595 + G·38470 + B·7471 + 0x8000) >> 16`.
    @inline(__always)
    public static func luma(_ r: UInt8, _ g: UInt8, _ b: UInt8) -> UInt8 {
        let red: UInt32 = UInt32(r) &* 19595
        let green: UInt32 = UInt32(g) &* 38470
        let blue: UInt32 = UInt32(b) &* 7471
        return UInt8(truncatingIfNeeded: (red &+ green &+ blue &+ 0x8000) >> 16)
    }
}

/// The file formats the codecs read and write.
public enum ImageFormat: String, Sendable, CaseIterable {
    case png
    case jpeg

    /// The usual file name extension (without the dot).
    public var fileExtension: String { self == .png ? "png" : "jpg" }

    /// The format whose signature starts `bytes` (PNG: `89 50 4E 47 0D 0A 1A 0A`; JPEG: `FF D8 FF`), if any.
    public static func sniff<Bytes: Collection>(_ bytes: Bytes) -> ImageFormat? where Bytes.Element == UInt8 {
        let head = Array(bytes.prefix(8))
        if head == [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A] { return .png }
        if head.count >= 3 && head[0] == 0xFF && head[1] == 0xD8 && head[2] == 0xFF { return .jpeg }
        return nil
    }

    /// The format a file name's extension names (`.png`; `.jpg`, `.jpeg`), if any.
    public init?(pathExtension: String) {
        switch pathExtension.lowercased() {
        case "png": self = .png
        case "jpg", "jpeg": self = .jpeg
        default: return nil
        }
    }
}
