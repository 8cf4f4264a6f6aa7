import CPNG

/// PNG through libpng's simplified API (`png_image_*`, libpng 1.6).
///
/// Every PNG kind is read as 8-bit grey, grey+alpha, RGB or RGBA (palettes expanded, 1/2/4-bit grey scaled to
/// 0...255, 16-bit samples scaled to 8 bits as sRGB values, i.e. v·255/65535 rounded), then alpha is dropped and the
/// channels converted as PIL's `convert` does (`ByteImage.converted`). The one place where libpng and PIL differ:
/// a file whose `gAMA` chunk is not sRGB's is gamma-corrected to sRGB by libpng, while PIL ignores the chunk.
enum PNGCodec {
    private static let flagAlpha = UInt32(PNG_FORMAT_FLAG_ALPHA)
    private static let flagColor = UInt32(PNG_FORMAT_FLAG_COLOR)

    static func decode(_ bytes: [UInt8], channels: Int?, name: String) throws -> ByteImage {
        var image = png_image()
        image.version = UInt32(PNG_IMAGE_VERSION)
        defer { png_image_free(&image) }
        let begun = bytes.withUnsafeBytes { png_image_begin_read_from_memory(&image, $0.baseAddress, $0.count) }
        guard begun != 0 else { throw failure(image, name: name) }
        let hasColor = image.format & flagColor != 0
        let hasAlpha = image.format & flagAlpha != 0
        // 8-bit samples, no colour map: palettes are expanded and 16-bit samples scaled.
        image.format = (hasColor ? flagColor : 0) | (hasAlpha ? flagAlpha : 0)
        // 16-bit samples hold sRGB values too (libpng would otherwise take them as linear light).
        image.flags |= UInt32(PNG_IMAGE_FLAG_16BIT_sRGB)
        let width = Int(image.width), height = Int(image.height)
        let readChannels = (hasColor ? 3 : 1) + (hasAlpha ? 1 : 0)
        guard width > 0, height > 0, width <= Int(Int32.max) / readChannels else {
            throw ImageError(.unsupported(format: .png, detail: "image size \(width)×\(height)"), file: name)
        }
        var buffer = [UInt8](repeating: 0, count: width * height * readChannels)
        let finished = buffer.withUnsafeMutableBytes {
            png_image_finish_read(&image, nil, $0.baseAddress, Int32(width * readChannels), nil)
        }
        guard finished != 0 else { throw failure(image, name: name) }
        let colourChannels = hasColor ? 3 : 1
        var pixels = buffer
        if hasAlpha {
            pixels = [UInt8](repeating: 0, count: width * height * colourChannels)
            for i in 0..<(width * height) {
                for c in 0..<colourChannels { pixels[i * colourChannels + c] = buffer[i * readChannels + c] }
            }
        }
        let decoded = ByteImage(width: width, height: height, channels: colourChannels, pixels: pixels)
        return decoded.converted(toChannels: channels ?? colourChannels)
    }

    static func encode(_ image: ByteImage, fast: Bool) throws -> [UInt8] {
        var control = png_image()
        control.version = UInt32(PNG_IMAGE_VERSION)
        control.width = UInt32(image.width)
        control.height = UInt32(image.height)
        control.format = image.channels == 3 ? flagColor : 0
        control.flags = fast ? UInt32(PNG_IMAGE_FLAG_FAST) : 0
        defer { png_image_free(&control) }
        var size = 0
        let sized = image.pixels.withUnsafeBytes {
            png_image_write_to_memory(&control, nil, &size, 0, $0.baseAddress, Int32(image.rowBytes), nil)
        }
        guard sized != 0, size > 0 else { throw failure(control, name: "<memory>", encoding: true) }
        var output = [UInt8](repeating: 0, count: size)
        let written = image.pixels.withUnsafeBytes { source in
            output.withUnsafeMutableBytes { target in
                png_image_write_to_memory(&control, target.baseAddress, &size, 0, source.baseAddress,
                                          Int32(image.rowBytes), nil)
            }
        }
        guard written != 0 else { throw failure(control, name: "<memory>", encoding: true) }
        return Array(output.prefix(size))
    }

    /// libpng's message for a failed call, as an `ImageError`.
    private static func failure(_ image: png_image, name: String, encoding: Bool = false) -> ImageError {
        var image = image
        let text = withUnsafeBytes(of: &image.message) { raw -> String in
            let bytes = raw.prefix { $0 != 0 }
            return String(decoding: bytes, as: UTF8.self)
        }
        let detail = text.isEmpty ? "libpng failed without a message" : text
        if encoding { return ImageError(.encodeFailed(format: .png, detail: detail), file: name) }
        // libpng's memory reader says "read beyond end of data" when the file stops early.
        if detail.contains("end of data") || detail.contains("Not enough image data") || detail.contains("truncated") {
            return ImageError(.truncated(format: .png, detail: detail), file: name)
        }
        return ImageError(.corrupt(format: .png, detail: detail), file: name)
    }
}
