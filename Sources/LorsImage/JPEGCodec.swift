import CTurboJPEG

/// Chroma subsampling of a colour JPEG.
public enum JPEGSubsampling: Sendable {
    case s444, s422, s420

    var turboJPEG: Int32 {
        switch self {
        case .s444: return Int32(TJSAMP_444.rawValue)
        case .s422: return Int32(TJSAMP_422.rawValue)
        case .s420: return Int32(TJSAMP_420.rawValue)
        }
    }
}

/// JPEG through libjpeg-turbo's TurboJPEG API (Debian 12: libjpeg-turbo 2.1, the `tj*` functions).
///
/// Decoding uses libjpeg's defaults, as PIL does: the accurate integer DCT and fancy (smooth) chroma upsampling, so
/// the pixels match PIL's to within a grey level. libjpeg reports damage in two ways: a fatal error (no image) and a
/// warning (an image was produced from damaged data). Fatal errors are thrown; of the warnings, a premature end of
/// the file is thrown as a truncated file, while the others (such as extraneous bytes before a marker) let the image
/// through, as PIL does.
enum JPEGCodec {
    static func decode(_ bytes: [UInt8], channels: Int?, name: String) throws -> ByteImage {
        guard let handle = tjInitDecompress() else {
            throw ImageError(.corrupt(format: .jpeg, detail: "cannot start the decoder: \(message(nil))"), file: name)
        }
        defer { tjDestroy(handle) }
        var width: Int32 = 0, height: Int32 = 0, subsampling: Int32 = 0, colorspace: Int32 = 0
        let headerStatus = bytes.withUnsafeBufferPointer {
            tjDecompressHeader3(handle, $0.baseAddress, UInt($0.count), &width, &height, &subsampling, &colorspace)
        }
        if headerStatus != 0 { throw failure(handle, name: name) }
        guard width > 0, height > 0 else {
            throw ImageError(.corrupt(format: .jpeg, detail: "image size \(width)×\(height)"), file: name)
        }
        let grey = colorspace == Int32(TJCS_GRAY.rawValue)
        guard grey || colorspace == Int32(TJCS_YCbCr.rawValue) || colorspace == Int32(TJCS_RGB.rawValue) else {
            let space = colorspace == Int32(TJCS_CMYK.rawValue) ? "CMYK" : colorspace == Int32(TJCS_YCCK.rawValue) ? "YCCK" : "colour space \(colorspace)"
            throw ImageError(.unsupported(format: .jpeg, detail: "\(space); only grey and RGB/YCbCr JPEGs are read"), file: name)
        }
        let decodedChannels = grey ? 1 : 3
        let pixelFormat = grey ? Int32(TJPF_GRAY.rawValue) : Int32(TJPF_RGB.rawValue)
        var pixels = [UInt8](repeating: 0, count: Int(width) * Int(height) * decodedChannels)
        let status = bytes.withUnsafeBufferPointer { source in
            pixels.withUnsafeMutableBufferPointer { target in
                tjDecompress2(handle, source.baseAddress, UInt(source.count), target.baseAddress, width,
                              width * Int32(decodedChannels), height, pixelFormat, 0)
            }
        }
        if status != 0 {
            let fatal = tjGetErrorCode(handle) == Int32(TJERR_FATAL.rawValue)
            let text = message(handle)
            if fatal || text.localizedCaseInsensitiveContains("premature end") { throw failure(handle, name: name) }
        }
        let image = ByteImage(width: Int(width), height: Int(height), channels: decodedChannels, pixels: pixels)
        return image.converted(toChannels: channels ?? decodedChannels)
    }

    static func encode(_ image: ByteImage, quality: Int, subsampling: JPEGSubsampling) throws -> [UInt8] {
        guard (1...100).contains(quality) else {
            throw ImageError(.encodeFailed(format: .jpeg, detail: "quality \(quality) is outside 1...100"), file: "<memory>")
        }
        guard let handle = tjInitCompress() else {
            throw ImageError(.encodeFailed(format: .jpeg, detail: "cannot start the encoder: \(message(nil))"), file: "<memory>")
        }
        defer { tjDestroy(handle) }
        var output: UnsafeMutablePointer<UInt8>? = nil
        var size: UInt = 0
        let grey = image.channels == 1
        let status = image.pixels.withUnsafeBufferPointer {
            tjCompress2(handle, $0.baseAddress, Int32(image.width), Int32(image.rowBytes), Int32(image.height),
                        grey ? Int32(TJPF_GRAY.rawValue) : Int32(TJPF_RGB.rawValue), &output, &size,
                        grey ? Int32(TJSAMP_GRAY.rawValue) : subsampling.turboJPEG, Int32(quality), 0)
        }
        defer { if let output { tjFree(output) } }
        guard status == 0, let output else {
            throw ImageError(.encodeFailed(format: .jpeg, detail: message(handle)), file: "<memory>")
        }
        return Array(UnsafeBufferPointer(start: output, count: Int(size)))
    }

    /// The decoder's last error as an `ImageError` (truncated when libjpeg says the data ended early).
    private static func failure(_ handle: tjhandle, name: String) -> ImageError {
        let text = message(handle)
        if text.localizedCaseInsensitiveContains("premature end") {
            return ImageError(.truncated(format: .jpeg, detail: text), file: name)
        }
        return ImageError(.corrupt(format: .jpeg, detail: text), file: name)
    }

    private static func message(_ handle: tjhandle?) -> String {
        guard let text = tjGetErrorStr2(handle) else { return "unknown error" }
        return String(cString: text)
    }
}
