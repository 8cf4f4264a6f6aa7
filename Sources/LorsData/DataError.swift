/// Errors of dataset readers. Every case names the file, so the message says what to fix.
public struct DataError: Error, CustomStringConvertible, Equatable, Sendable {
    /// What went wrong.
    public enum Kind: Equatable, Sendable {
        /// The file is absent or unreadable (`detail`: the system's reason).
        case unreadable(detail: String)
        /// An IDX file whose magic number is not the expected one.
        case wrongMagic(found: UInt32, expected: UInt32)
        /// Fewer bytes than the header (or the record size) promises.
        case truncated(expectedBytes: Int, foundBytes: Int)
        /// A label outside `0..<classes` at record `index`.
        case labelOutOfRange(label: Int, index: Int, classes: Int)
        /// Image and label files disagree on the number of samples.
        case countMismatch(images: Int, labels: Int, labelFile: String)
        /// A header field or layout the reader does not support (`detail` says which).
        case badFormat(detail: String)
    }

    /// The offending file (path as given).
    public let file: String
    public let kind: Kind

    public init(_ kind: Kind, file: String) {
        self.kind = kind
        self.file = file
    }

    public var description: String {
        switch kind {
        case .unreadable(let detail):
            return "\(file): cannot read data file (\(detail))"
        case .wrongMagic(let found, let expected):
            return "\(file): wrong magic number 0x\(hex(found)) (expected 0x\(hex(expected))); not an IDX file of this kind"
        case .truncated(let expected, let found):
            return "\(file): truncated file: expected \(expected) bytes, found \(found)"
        case .labelOutOfRange(let label, let index, let classes):
            return "\(file): label \(label) of sample \(index) out of range 0..<\(classes)"
        case .countMismatch(let images, let labels, let labelFile):
            return "\(file): \(images) images but \(labelFile) has \(labels) labels"
        case .badFormat(let detail):
            return "\(file): \(detail)"
        }
    }

    private func hex(_ value: UInt32) -> String {
        let digits = String(value, radix: 16)
        return String(repeating: "0", count: max(0, 8 - digits.count)) + digits
    }
}
