import Foundation
import LorsNative

/// What `lors inspect` shows: every dataset with shape, dtype and checksum state, the attributes of `/meta` and
/// `/optimizer`, and the problems found.
public struct CheckpointReport: Equatable, Sendable {
    /// One dataset.
    public struct Dataset: Equatable, Sendable {
        public var path: String
        public var shape: [Int]
        public var dtype: String
        /// Stored CRC-32 (nil if absent).
        public var storedChecksum: UInt32?
        /// Computed CRC-32 (nil if the dataset could not be read).
        public var computedChecksum: UInt32?
        /// Stored and computed checksums agree.
        public var checksumOK: Bool { storedChecksum != nil && storedChecksum == computedChecksum }
    }

    /// The file inspected.
    public var file: String
    /// File size in bytes.
    public var fileSize: Int
    /// Datasets in manifest order.
    public var datasets: [Dataset]
    /// Attributes of `/meta` rendered as text (the manifest `datasets` omitted).
    public var metaAttributes: [String: String]
    /// Attributes of `/optimizer` rendered as text.
    public var optimizerAttributes: [String: String]
    /// Problems, one line each (empty when the checkpoint is intact).
    public var problems: [String]

    /// No problems.
    public var isIntact: Bool { problems.isEmpty }

    /// Human-readable rendering.
    public var text: String {
        var lines = ["checkpoint \(file) (\(fileSize) bytes)"]
        lines.append("meta:")
        for key in metaAttributes.keys.sorted() where key != "config" { lines.append("  \(key): \(metaAttributes[key]!)") }
        if !optimizerAttributes.isEmpty {
            lines.append("optimizer:")
            for key in optimizerAttributes.keys.sorted() { lines.append("  \(key): \(optimizerAttributes[key]!)") }
        }
        let totalElements = datasets.reduce(0) { $0 + $1.shape.reduce(1, *) }
        lines.append("datasets: \(datasets.count) (\(totalElements) float32 elements)")
        for dataset in datasets {
            let state = dataset.checksumOK ? "ok" : "BAD"
            lines.append("  \(dataset.path)  \(dataset.dtype) \(dataset.shape)  crc32 \(dataset.storedChecksum.map(hex) ?? "-") \(state)")
        }
        if let config = metaAttributes["config"], !config.isEmpty {
            lines.append("config:")
            lines += config.split(separator: "\n", omittingEmptySubsequences: false).map { "  " + $0 }
        }
        lines.append(problems.isEmpty ? "status: OK (every checksum verified)" : "status: DAMAGED")
        lines += problems.map { "  problem: \($0)" }
        return lines.joined(separator: "\n")
    }

    /// JSON rendering (indented), keys in this order: `file`, `file_size`, `intact`, `meta`, `optimizer` (attributes,
    /// keys sorted), `datasets` (path, shape, dtype, crc32 or null, crc32_ok), `problems`.
    public var json: String {
        let object: JSONObject = [
            "file": .string(file), "file_size": .int(fileSize), "intact": .bool(isIntact),
            "meta": .object(JSONObject(sortingKeysOf: metaAttributes.mapValues(JSONValue.string))),
            "optimizer": .object(JSONObject(sortingKeysOf: optimizerAttributes.mapValues(JSONValue.string))),
            "datasets": .array(datasets.map { dataset in
                ["path": .string(dataset.path), "shape": .array(dataset.shape.map(JSONValue.int)), "dtype": .string(dataset.dtype),
                 "crc32": dataset.storedChecksum.map { .int(Int($0)) } ?? .null, "crc32_ok": .bool(dataset.checksumOK)]
            }),
            "problems": .array(problems.map(JSONValue.string)),
        ]
        return object.text(.indented)
    }
}

/// `lors inspect`: reads a checkpoint serially and verifies every checksum.
public enum CheckpointInspector {
    /// The report of `path`. A file that cannot be opened as a complete checkpoint throws (truncated, not a
    /// checkpoint); a readable one with problems returns them in the report, or throws `CheckpointError.damaged` with
    /// them when `throwIfDamaged`.
    public static func inspect(path: String, throwIfDamaged: Bool = true) throws -> CheckpointReport {
        let reader = try CheckpointReader(path: path)
        defer { try? reader.close() }
        let problems = try reader.verificationProblems()
        var byPath: [String: CheckpointError] = [:]
        for problem in problems { if let dataset = problem.dataset { byPath[dataset] = problem } }
        var datasets: [CheckpointReport.Dataset] = []
        for info in reader.datasets {
            var dataset = CheckpointReport.Dataset(path: info.path, shape: info.shape, dtype: "float32", storedChecksum: nil, computedChecksum: nil)
            if try reader.contains(info.path) {
                dataset.shape = (try? reader.file.shape(of: info.path)) ?? info.shape
                dataset.storedChecksum = try? reader.storedChecksum(info.path)
                switch byPath[info.path] {
                case .checksumMismatch(_, _, _, let computed)?: dataset.computedChecksum = computed
                case nil: dataset.computedChecksum = dataset.storedChecksum
                default: break
                }
            } else {
                dataset.dtype = "missing"
            }
            datasets.append(dataset)
        }
        let size = ((try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? Int) ?? 0
        let report = CheckpointReport(file: path, fileSize: size, datasets: datasets,
                                      metaAttributes: try attributes(of: CheckpointLayout.metaGroup, in: reader.file, skipping: ["datasets"]),
                                      optimizerAttributes: try reader.file.exists(CheckpointLayout.optimizerGroup)
                                          ? attributes(of: CheckpointLayout.optimizerGroup, in: reader.file, skipping: []) : [:],
                                      problems: problems.map(\.description))
        if throwIfDamaged && !report.isIntact { throw CheckpointError.damaged(file: path, problems: report.problems) }
        return report
    }

    private static func attributes(of group: String, in file: HDF5File, skipping: Set<String>) throws -> [String: String] {
        var out: [String: String] = [:]
        for name in try file.attributeNames(of: group) where !skipping.contains(name) {
            switch try file.attribute(name, of: group) {
            case .string(let value): out[name] = value
            case .int64(let value): out[name] = String(value)
            case .double(let value): out[name] = String(value)
            case .int64Array(let values): out[name] = "[" + values.map(String.init).joined(separator: ", ") + "]"
            }
        }
        return out
    }
}
