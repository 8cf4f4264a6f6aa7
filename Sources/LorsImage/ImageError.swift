/// Errors of image decoding, encoding and file I/O. Every error names the file (or the name given for bytes in
/// memory) and, when the caller attached one with `withImageID(_:)`, the image's id in its dataset.
public struct ImageError: Error, CustomStringConvertible, Equatable, Sendable {
    public enum Kind: Equatable, Sendable {
        /// The file is absent or cannot be read (`detail`: the system's reason).
        case unreadable(detail: String)
        /// The bytes start with neither the PNG nor the JPEG signature.
        case unknownFormat(firstBytes: [UInt8])
        /// The data ends before the image does.
        case truncated(format: ImageFormat, detail: String)
        /// The decoder rejected the data.
        case corrupt(format: ImageFormat, detail: String)
        /// Valid data of a kind this reader does not handle (for instance a CMYK JPEG).
        case unsupported(format: ImageFormat, detail: String)
        /// The encoder failed.
        case encodeFailed(format: ImageFormat, detail: String)
        /// Writing the file failed (`detail`: the system's reason).
        case writeFailed(detail: String)
    }

    /// The file (path as given), or the name given to bytes decoded from memory.
    public let file: String
    /// The image's id in its dataset, when the caller knows it.
    public var imageID: String?
    public let kind: Kind

    public init(_ kind: Kind, file: String, imageID: String? = nil) {
        self.kind = kind
        self.file = file
        self.imageID = imageID
    }

    /// The same error naming the image id too.
    public func withImageID(_ id: CustomStringConvertible) -> ImageError {
        var copy = self
        copy.imageID = id.description
        return copy
    }

    public var description: String {
        let place = imageID.map { "\(file) (image \($0))" } ?? file
        switch kind {
        case .unreadable(let detail):
            return "\(place): cannot read image file (\(detail))"
        case .unknownFormat(let bytes):
            let hex = bytes.map { byte -> String in
                let digits = String(byte, radix: 16)
                return digits.count == 1 ? "0" + digits : digits
            }.joined(separator: " ")
            return "\(place): not a PNG or JPEG file (first bytes: \(bytes.isEmpty ? "none, the file is empty" : hex))"
        case .truncated(let format, let detail):
            return "\(place): truncated \(format.rawValue.uppercased()) file (\(detail))"
        case .corrupt(let format, let detail):
            return "\(place): corrupt \(format.rawValue.uppercased()) data (\(detail))"
        case .unsupported(let format, let detail):
            return "\(place): unsupported \(format.rawValue.uppercased()) image (\(detail))"
        case .encodeFailed(let format, let detail):
            return "\(place): \(format.rawValue.uppercased()) encoding failed (\(detail))"
        case .writeFailed(let detail):
            return "\(place): cannot write file (\(detail))"
        }
    }
}
