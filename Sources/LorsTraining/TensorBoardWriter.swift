import Foundation

/// Writes TensorBoard event files (`events.out.tfevents.<time>.<host>`) without TensorFlow:
/// TFRecord framing (`uint64 length`, masked CRC-32C of the length, the record, masked CRC-32C
/// of the record; little-endian) around hand-encoded `tensorflow.Event` protobufs:
///
///     Event   { double wall_time = 1; int64 step = 2; string file_version = 3; Summary summary = 5; }
///     Summary { repeated Value value = 1; }
///     Value   { string tag = 1; float simple_value = 2; }
///
/// The first record is `file_version: "brain.Event:2"`. Each record is written (unbuffered) as
/// soon as it is added, so a killed run keeps what it logged.
public final class TensorBoardWriter {
    /// The event file.
    public let path: String
    private let handle: FileHandle

    /// Creates `directory` if needed and a new event file in it.
    public init(directory: String) throws {
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw TrainingError.cannotWrite(path: directory, detail: "\(error)")
        }
        let host = ProcessInfo.processInfo.hostName.replacingOccurrences(of: "/", with: "_")
        var candidate = (directory as NSString).appendingPathComponent(
            "events.out.tfevents.\(Int(Date().timeIntervalSince1970)).\(host)")
        var suffix = 1
        while FileManager.default.fileExists(atPath: candidate) {
            candidate = (directory as NSString).appendingPathComponent(
                "events.out.tfevents.\(Int(Date().timeIntervalSince1970)).\(host).\(suffix)")
            suffix += 1
        }
        path = candidate
        guard FileManager.default.createFile(atPath: path, contents: nil), let handle = FileHandle(forWritingAtPath: path) else {
            throw TrainingError.cannotWrite(path: candidate, detail: "cannot create event file")
        }
        self.handle = handle
        var event = ProtobufWriter()
        event.double(field: 1, Date().timeIntervalSince1970)
        event.string(field: 3, "brain.Event:2")
        writeRecord(event.bytes)
    }

    /// Adds scalars `tag → value` at `step` (one event).
    public func scalars(_ values: [(tag: String, value: Double)], step: Int, wallTime: Date = Date()) {
        var summary = ProtobufWriter()
        for (tag, value) in values {
            var entry = ProtobufWriter()
            entry.string(field: 1, tag)
            entry.float(field: 2, Float(value))
            summary.message(field: 1, entry.bytes)
        }
        var event = ProtobufWriter()
        event.double(field: 1, wallTime.timeIntervalSince1970)
        event.varint(field: 2, UInt64(bitPattern: Int64(step)))
        event.message(field: 5, summary.bytes)
        writeRecord(event.bytes)
    }

    /// One TFRecord: length, masked CRC of the length, data, masked CRC of the data.
    func writeRecord(_ data: [UInt8]) {
        var record = [UInt8]()
        record.reserveCapacity(data.count + 16)
        let length = littleEndian(UInt64(data.count))
        record += length
        record += littleEndian(CRC32C.masked(length))
        record += data
        record += littleEndian(CRC32C.masked(data))
        handle.write(Data(record))
    }

    private func littleEndian<T: FixedWidthInteger>(_ value: T) -> [UInt8] {
        withUnsafeBytes(of: value.littleEndian) { Array($0) }
    }

    deinit { try? handle.close() }
}

/// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78) and TFRecord's mask.
public enum CRC32C {
    static let table: [UInt32] = (0..<256).map { n -> UInt32 in
        var c = UInt32(n)
        for _ in 0..<8 { c = (c & 1) != 0 ? (c >> 1) ^ 0x82F6_3B78 : c >> 1 }
        return c
    }

    /// CRC-32C of `bytes` (check value of "123456789" is 0xE3069283).
    public static func checksum(_ bytes: [UInt8]) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        for b in bytes { crc = table[Int((crc ^ UInt32(b)) & 0xFF)] ^ (crc >> 8) }
        return crc ^ 0xFFFF_FFFF
    }

    /// TFRecord's masked CRC: `((crc >> 15) | (crc << 17)) + 0xa282ead8`.
    public static func masked(_ bytes: [UInt8]) -> UInt32 {
        let crc = checksum(bytes)
        return ((crc >> 15) | (crc << 17)) &+ 0xA282_EAD8
    }
}

/// Minimal protobuf encoder for the few wire types an Event needs.
struct ProtobufWriter {
    private(set) var bytes: [UInt8] = []

    mutating func rawVarint(_ value: UInt64) {
        var v = value
        while v >= 0x80 {
            bytes.append(UInt8(v & 0x7F) | 0x80)
            v >>= 7
        }
        bytes.append(UInt8(v))
    }

    mutating func tag(_ field: Int, wireType: Int) { rawVarint(UInt64(field << 3 | wireType)) }

    /// Wire type 0.
    mutating func varint(field: Int, _ value: UInt64) {
        tag(field, wireType: 0)
        rawVarint(value)
    }

    /// Wire type 1 (fixed64).
    mutating func double(field: Int, _ value: Double) {
        tag(field, wireType: 1)
        withUnsafeBytes(of: value.bitPattern.littleEndian) { bytes += $0 }
    }

    /// Wire type 5 (fixed32).
    mutating func float(field: Int, _ value: Float) {
        tag(field, wireType: 5)
        withUnsafeBytes(of: value.bitPattern.littleEndian) { bytes += $0 }
    }

    /// Wire type 2, UTF-8.
    mutating func string(field: Int, _ value: String) { message(field: field, Array(value.utf8)) }

    /// Wire type 2 (embedded message or bytes).
    mutating func message(field: Int, _ payload: [UInt8]) {
        tag(field, wireType: 2)
        rawVarint(UInt64(payload.count))
        bytes += payload
    }
}
