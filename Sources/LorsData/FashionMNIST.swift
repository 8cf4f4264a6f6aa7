import Foundation
import LorsNative

/// IDX files (LeCun's MNIST format, big-endian): magic `0x0000080N` (N = number of dimensions,
/// element type 0x08 = unsigned byte), then N 32-bit sizes, then the bytes.
public enum IDX {
    /// Magic of a 3-d byte tensor (images `[N, H, W]`).
    public static let imagesMagic: UInt32 = 0x0000_0803
    /// Magic of a 1-d byte tensor (labels `[N]`).
    public static let labelsMagic: UInt32 = 0x0000_0801

    /// Reads a (possibly gzip'd, by the `.gz` suffix) IDX file: the dimensions and the payload.
    public static func read(_ path: String, expectedMagic: UInt32) throws -> (dimensions: [Int], bytes: ArraySlice<UInt8>) {
        let raw = try readFile(path)
        guard raw.count >= 4 else { throw DataError(.truncated(expectedBytes: 4, foundBytes: raw.count), file: path) }
        let magic = bigEndian(raw, at: 0)
        guard magic == expectedMagic else { throw DataError(.wrongMagic(found: magic, expected: expectedMagic), file: path) }
        let rank = Int(magic & 0xFF)
        let headerBytes = 4 + 4 * rank
        guard raw.count >= headerBytes else {
            throw DataError(.truncated(expectedBytes: headerBytes, foundBytes: raw.count), file: path)
        }
        let dimensions = (0..<rank).map { Int(bigEndian(raw, at: 4 + 4 * $0)) }
        let payload = dimensions.reduce(1, *)
        guard raw.count >= headerBytes + payload else {
            throw DataError(.truncated(expectedBytes: headerBytes + payload, foundBytes: raw.count), file: path)
        }
        return (dimensions, raw[headerBytes..<(headerBytes + payload)])
    }

    /// The file's bytes, gunzipped when the name ends in `.gz`.
    static func readFile(_ path: String) throws -> [UInt8] {
        guard FileManager.default.isReadableFile(atPath: path) else {
            throw DataError(.unreadable(detail: "no such file or not readable"), file: path)
        }
        if path.hasSuffix(".gz") {
            do { return try Gzip.decompress(contentsOf: path) } catch {
                throw DataError(.badFormat(detail: "gzip: \(error)"), file: path)
            }
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw DataError(.unreadable(detail: "read failed"), file: path)
        }
        return [UInt8](data)
    }

    static func bigEndian(_ bytes: [UInt8], at offset: Int) -> UInt32 {
        (UInt32(bytes[offset]) << 24) | (UInt32(bytes[offset + 1]) << 16) | (UInt32(bytes[offset + 2]) << 8) | UInt32(bytes[offset + 3])
    }
}

/// Fashion-MNIST (Zalando): 28×28 grey images, 10 classes; 60,000 train and 10,000 test images as
/// gzip'd IDX files `train-images-idx3-ubyte.gz`, `train-labels-idx1-ubyte.gz`, `t10k-*`.
public enum FashionMNIST {
    public static let classes = 10
    /// Class names in label order.
    public static let classNames = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
                                    "Bag", "Ankle boot"]

    /// The files of `split` ("train" or "test") under `root`; an uncompressed file is used when the `.gz` one is absent.
    public static func files(root: String, split: String) -> (images: String, labels: String) {
        let stem = split == "train" ? "train" : "t10k"
        func pick(_ name: String) -> String {
            let gz = (root as NSString).appendingPathComponent(name + ".gz")
            let plain = (root as NSString).appendingPathComponent(name)
            return FileManager.default.fileExists(atPath: gz) || !FileManager.default.fileExists(atPath: plain) ? gz : plain
        }
        return (pick("\(stem)-images-idx3-ubyte"), pick("\(stem)-labels-idx1-ubyte"))
    }

    /// Loads `split` from `root`; errors name the offending file.
    public static func load(root: String, split: String) throws -> ImageDataset {
        let paths = files(root: root, split: split)
        return try load(images: paths.images, labels: paths.labels, name: "fashion_mnist/\(split)")
    }

    /// Loads an image/label IDX pair, checking magic numbers, sizes, counts and label range.
    public static func load(images imagePath: String, labels labelPath: String, name: String = "fashion_mnist",
                            classes: Int = FashionMNIST.classes) throws -> ImageDataset {
        let images = try IDX.read(imagePath, expectedMagic: IDX.imagesMagic)
        let labels = try IDX.read(labelPath, expectedMagic: IDX.labelsMagic)
        let count = images.dimensions[0]
        guard labels.dimensions[0] == count else {
            throw DataError(.countMismatch(images: count, labels: labels.dimensions[0], labelFile: labelPath), file: imagePath)
        }
        var labelValues = [Int32](repeating: 0, count: count)
        for (i, byte) in labels.bytes.enumerated() {
            guard Int(byte) < classes else {
                throw DataError(.labelOutOfRange(label: Int(byte), index: i, classes: classes), file: labelPath)
            }
            labelValues[i] = Int32(byte)
        }
        return ImageDataset(name: name, pixels: Array(images.bytes), labels: labelValues, channels: 1,
                            height: images.dimensions[1], width: images.dimensions[2], classes: classes)
    }
}
