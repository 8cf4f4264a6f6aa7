import Foundation
import LorsNative
import LorsTensor

/// Dense weights for other tools: HDF5 (`/<name>` datasets with crc32 attributes) or safetensors.
///
/// Export takes (name, tensor) pairs so the caller decides what goes in: a checkpoint's `/model` tensors
/// (`CheckpointExport.modelTensors(from:)`), or merged dense weights from a LORS model (`merged()` of each LORST
/// layer). Names should be PyTorch state-dict keys (`blocks.0.attn.qkv.weight`).
public enum CheckpointExport {
    /// Output format of `export`.
    public enum Format: String, Sendable, CaseIterable {
        case hdf5
        case safetensors
    }

    /// The `/model` tensors of a checkpoint (checksums verified), in manifest order, with the `model/` prefix removed.
    public static func modelTensors(from reader: CheckpointReader) throws -> [(name: String, tensor: Tensor)] {
        let prefix = CheckpointLayout.modelGroup + "/"
        return try reader.datasets.filter { $0.path.hasPrefix(prefix) }.map { info in
            (String(info.path.dropFirst(prefix.count)), Tensor(try reader.read(info.path, expectedShape: info.shape), shape: info.shape))
        }
    }

    /// Writes `tensors` to `path` in `format` (replacing the file). `metadata` goes into the safetensors header's
    /// `__metadata__` or onto the HDF5 root as string attributes.
    public static func export(_ tensors: [(name: String, tensor: Tensor)], to path: String, format: Format,
                              metadata: [String: String] = [:]) throws {
        switch format {
        case .hdf5: try writeHDF5(tensors, to: path, metadata: metadata)
        case .safetensors: try writeSafetensors(tensors, to: path, metadata: metadata)
        }
    }

    /// HDF5: one float32 dataset `/<name>` per tensor at its shape, with a `crc32` attribute.
    public static func writeHDF5(_ tensors: [(name: String, tensor: Tensor)], to path: String, metadata: [String: String] = [:]) throws {
        do {
            let file = try HDF5File(path: path, mode: .create)
            for (name, tensor) in tensors {
                let values = tensor.toArray()
                try file.createDataset("/" + name, shape: tensor.shape, values: values)
                try file.setAttribute(CheckpointLayout.checksumAttribute, .int64(Int64(CRC32.checksum(values))), on: "/" + name)
            }
            for (key, value) in metadata { try file.setAttribute(key, .string(value), on: "/") }
            try file.close()
        } catch let error as NativeError {
            throw CheckpointError.native(file: path, error: error)
        }
    }

    /// safetensors: 8-byte little-endian header length N, N bytes of JSON
    /// (`{"__metadata__": {...}, "name": {"dtype": "F32", "shape": [...], "data_offsets": [begin, end]}, ...}`: the
    /// metadata first, keys sorted, then the tensors in the given order; padded with spaces to a multiple of 8), then
    /// the raw little-endian float32 data of every tensor, in the given order.
    public static func writeSafetensors(_ tensors: [(name: String, tensor: Tensor)], to path: String,
                                        metadata: [String: String] = [:]) throws {
        var header = JSONObject()
        if !metadata.isEmpty { header["__metadata__"] = .object(JSONObject(sortingKeysOf: metadata.mapValues(JSONValue.string))) }
        var offset = 0
        for (name, tensor) in tensors {
            guard header[name] == nil, name != "__metadata__" else {
                throw CheckpointError.invalidSafetensors(path: path, detail: "duplicate or reserved tensor name '\(name)'")
            }
            let bytes = tensor.count * MemoryLayout<Float>.size
            header[name] = ["dtype": "F32", "shape": .array(tensor.shape.map(JSONValue.int)),
                            "data_offsets": [.int(offset), .int(offset + bytes)]]
            offset += bytes
        }
        var json = Data(header.text().utf8)
        while json.count % 8 != 0 { json.append(UInt8(ascii: " ")) }
        var output = Data(capacity: 8 + json.count + offset)
        withUnsafeBytes(of: UInt64(json.count).littleEndian) { output.append(contentsOf: $0) }
        output.append(json)
        for (_, tensor) in tensors {
            tensor.withHostBuffer { output.append(contentsOf: UnsafeRawBufferPointer($0)) }
        }
        do {
            try output.write(to: URL(fileURLWithPath: path), options: .atomic)
        } catch {
            throw CheckpointError.io(path: path, operation: "write", detail: error.localizedDescription)
        }
    }

    /// Reads an F32 safetensors file (names in data-offset order). Other dtypes, bad offsets and truncated data
    /// are errors.
    public static func readSafetensors(path: String) throws -> (tensors: [(name: String, shape: [Int], values: [Float])], metadata: [String: String]) {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw CheckpointError.io(path: path, operation: "read", detail: "cannot read the file")
        }
        let bytes = [UInt8](data)
        guard bytes.count >= 8 else { throw CheckpointError.invalidSafetensors(path: path, detail: "shorter than the 8-byte header length") }
        let headerLength = bytes[0..<8].enumerated().reduce(UInt64(0)) { $0 | (UInt64($1.element) << (8 * UInt64($1.offset))) }
        guard headerLength <= UInt64(bytes.count - 8) else {
            throw CheckpointError.invalidSafetensors(path: path, detail: "header length \(headerLength) exceeds the file")
        }
        let start = 8 + Int(headerLength)
        guard let object = try? JSONSerialization.jsonObject(with: Data(bytes[8..<start])), let header = object as? [String: Any] else {
            throw CheckpointError.invalidSafetensors(path: path, detail: "header is not a JSON object")
        }
        var metadata: [String: String] = [:]
        var tensors: [(name: String, shape: [Int], values: [Float], begin: Int)] = []
        for (name, value) in header {
            if name == "__metadata__" { metadata = value as? [String: String] ?? [:]; continue }
            guard let entry = value as? [String: Any], let dtype = entry["dtype"] as? String, let shape = entry["shape"] as? [Int],
                  let offsets = entry["data_offsets"] as? [Int], offsets.count == 2 else {
                throw CheckpointError.invalidSafetensors(path: path, detail: "bad entry for '\(name)'")
            }
            guard dtype == "F32" else { throw CheckpointError.invalidSafetensors(path: path, detail: "'\(name)' has dtype \(dtype), only F32 is read") }
            let count = shape.reduce(1, *)
            guard offsets[1] - offsets[0] == count * 4, offsets[0] >= 0, start + offsets[1] <= bytes.count else {
                throw CheckpointError.invalidSafetensors(path: path, detail: "data_offsets \(offsets) of '\(name)' do not fit shape \(shape) and the file")
            }
            var values = [Float](repeating: 0, count: count)
            values.withUnsafeMutableBytes { destination in
                bytes.withUnsafeBytes { source in
                    destination.copyMemory(from: UnsafeRawBufferPointer(rebasing: source[(start + offsets[0])..<(start + offsets[1])]))
                }
            }
            tensors.append((name, shape, values, offsets[0]))
        }
        tensors.sort { $0.begin < $1.begin }
        return (tensors.map { ($0.name, $0.shape, $0.values) }, metadata)
    }
}
