import Foundation

/// CIFAR-100, binary version (`cifar-100-binary/train.bin`, `test.bin`): records of 1 coarse label
/// byte (0..<20), 1 fine label byte (0..<100) and 3072 pixel bytes (1024 red, 1024 green, 1024
/// blue, each 32×32 row-major). The fine label is the class.
public enum CIFAR100 {
    public static let classes = 100
    public static let coarseClasses = 20
    public static let side = 32
    /// Bytes per record.
    public static let recordSize = 2 + 3 * 32 * 32

    /// Loads `split` ("train" or "test") from `root/<split>.bin`.
    public static func load(root: String, split: String) throws -> ImageDataset {
        try load(file: (root as NSString).appendingPathComponent(split == "train" ? "train.bin" : "test.bin"),
                 name: "cifar100/\(split)")
    }

    /// Loads one binary file; errors name it (unreadable, empty or truncated, label out of range).
    public static func load(file path: String, name: String = "cifar100") throws -> ImageDataset {
        let bytes = try IDX.readFile(path)
        guard !bytes.isEmpty else { throw DataError(.truncated(expectedBytes: recordSize, foundBytes: 0), file: path) }
        guard bytes.count % recordSize == 0 else {
            let complete = bytes.count / recordSize
            throw DataError(.truncated(expectedBytes: (complete + 1) * recordSize, foundBytes: bytes.count), file: path)
        }
        let count = bytes.count / recordSize
        let imageBytes = recordSize - 2
        var pixels = [UInt8](repeating: 0, count: count * imageBytes)
        var labels = [Int32](repeating: 0, count: count)
        bytes.withUnsafeBufferPointer { source in
            pixels.withUnsafeMutableBufferPointer { target in
                for i in 0..<count {
                    let record = i * recordSize
                    (target.baseAddress! + i * imageBytes).update(from: source.baseAddress! + record + 2, count: imageBytes)
                }
            }
        }
        for i in 0..<count {
            let coarse = Int(bytes[i * recordSize]), fine = Int(bytes[i * recordSize + 1])
            guard coarse < coarseClasses else {
                throw DataError(.labelOutOfRange(label: coarse, index: i, classes: coarseClasses), file: path)
            }
            guard fine < classes else { throw DataError(.labelOutOfRange(label: fine, index: i, classes: classes), file: path) }
            labels[i] = Int32(fine)
        }
        return ImageDataset(name: name, pixels: pixels, labels: labels, channels: 3, height: side, width: side, classes: classes)
    }
}
