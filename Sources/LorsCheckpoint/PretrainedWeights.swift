import Foundation
import LorsNative
import LorsNN
import LorsTensor

/// A weights file that cannot initialise a module. Every case names the file; the per-tensor cases name the tensor.
public enum PretrainedWeightsError: Error, CustomStringConvertible, Equatable {
    /// The file cannot be opened or read.
    case unreadable(file: String, detail: String)
    /// The file is neither a valid safetensors file nor an HDF5 file of the expected layout.
    case invalidFormat(file: String, detail: String)
    /// A tensor the module needs is stored in a dtype that is not read (F32, F16, BF16 and F64 are).
    case unsupportedDType(file: String, name: String, dtype: String)
    /// Parameters or buffers of the module that the file does not hold.
    case missing(file: String, names: [String])
    /// A tensor whose shape differs from the module's parameter or buffer of that name.
    case shapeMismatch(file: String, name: String, expected: [Int], found: [Int])
    /// Tensors in the file that the module does not have (`hint` says what they look like, when recognisable).
    case unexpected(file: String, names: [String], hint: String?)

    public var description: String {
        func list(_ names: [String]) -> String {
            names.prefix(6).map { "'\($0)'" }.joined(separator: ", ") + (names.count > 6 ? " and \(names.count - 6) more" : "")
        }
        switch self {
        case let .unreadable(file, detail):
            return "pretrained weights '\(file)': cannot read the file: \(detail)"
        case let .invalidFormat(file, detail):
            return "pretrained weights '\(file)': not a safetensors or HDF5 weights file: \(detail)"
        case let .unsupportedDType(file, name, dtype):
            return "pretrained weights '\(file)': '\(name)' has dtype \(dtype); F32, F16, BF16 and F64 are read"
        case let .missing(file, names):
            return "pretrained weights '\(file)': \(names.count) parameter(s)/buffer(s) of the model are not in the file: \(list(names))"
        case let .shapeMismatch(file, name, expected, found):
            return "pretrained weights '\(file)': '\(name)' has shape \(found) in the file, the model's has shape \(expected)"
        case let .unexpected(file, names, hint):
            return "pretrained weights '\(file)': \(names.count) tensor(s) in the file that the model does not have: \(list(names))"
                + (hint.map { " (\($0))" } ?? "")
        }
    }
}

/// One tensor of a weights file, converted to float32.
public struct WeightTensor: Sendable, Equatable {
    public let name: String
    public let shape: [Int]
    public let values: [Float]

    public init(name: String, shape: [Int], values: [Float]) {
        self.name = name
        self.shape = shape
        self.values = values
    }
}

/// Weights written by other tools, read into modules by parameter name: safetensors (`safetensors.torch.save_file` of a
/// PyTorch `state_dict()`) or HDF5 (one dataset per tensor at the root, named by its state-dict key).
public enum PretrainedWeights {
    /// Names a torchvision classifier state dict holds that a backbone does not: the classifier `fc.*` and BatchNorm's
    /// `num_batches_tracked` counters.
    public static let torchvisionClassifierAndCounters: @Sendable (String) -> Bool = { name in
        name.hasPrefix("fc.") || name == "num_batches_tracked" || name.hasSuffix(".num_batches_tracked")
    }

    /// The tensors of the file at `path` (safetensors or HDF5, told apart by the HDF5 signature), in file order, except
    /// those `skipping` selects (which are not decoded, so their dtype does not matter).
    public static func read(path: String, skipping skip: (String) -> Bool = { _ in false }) throws -> [WeightTensor] {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path), options: .alwaysMapped)
        } catch {
            throw PretrainedWeightsError.unreadable(file: path, detail: error.localizedDescription)
        }
        let hdf5Signature: [UInt8] = [0x89, 0x48, 0x44, 0x46, 0x0D, 0x0A, 0x1A, 0x0A]
        if data.count >= 8 && Array(data.prefix(8)) == hdf5Signature {
            return try readHDF5(path: path, skipping: skip)
        }
        return try readSafetensors(data, path: path, skipping: skip)
    }

    /// Assigns every parameter and buffer of `module` (full dotted names) from the file at `path`. Each must be in the
    /// file with the same shape; a tensor of the file that the module lacks is an error unless `skipping` selects it.
    /// Only values change: frozen flags and gradients' requirements stay as they are.
    public static func load(into module: Module, from path: String, skipping skip: (String) -> Bool = { _ in false }) throws {
        let tensors = try read(path: path, skipping: skip)
        var targets: [String: Tensor] = [:]
        var order: [String] = []
        for (name, tensor) in module.namedParameters() + module.namedBuffers() where targets[name] == nil {
            targets[name] = tensor
            order.append(name)
        }
        let byName = Dictionary(tensors.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        let unexpected = tensors.map(\.name).filter { targets[$0] == nil }
        if !unexpected.isEmpty {
            throw PretrainedWeightsError.unexpected(file: path, names: unexpected, hint: hint(unexpected: unexpected, targets: order))
        }
        let missing = order.filter { byName[$0] == nil }
        if !missing.isEmpty { throw PretrainedWeightsError.missing(file: path, names: missing) }
        for name in order {
            let target = targets[name]!, source = byName[name]!
            guard source.shape == target.shape else {
                throw PretrainedWeightsError.shapeMismatch(file: path, name: name, expected: target.shape, found: source.shape)
            }
        }
        for name in order {
            targets[name]!.assign(Tensor(byName[name]!.values, shape: targets[name]!.shape))
        }
    }

    /// What unexpected names look like, when a common mistake explains them.
    static func hint(unexpected: [String], targets: [String]) -> String? {
        if unexpected.contains(where: { $0.hasSuffix(".running_mean") || $0.hasSuffix(".running_var") })
            && !targets.contains(where: { $0.hasSuffix(".running_mean") }) {
            return "the file holds BatchNorm running statistics but the model's norm layers have none: "
                + "BatchNorm weights need the frozen BatchNorm backbone"
        }
        for prefix in ["module.", "backbone."] where unexpected.allSatisfy({ $0.hasPrefix(prefix) }) {
            return "every name starts with '\(prefix)': the names must be the backbone's own (conv1.weight, layer1.0.conv1.weight, ...)"
        }
        return nil
    }

    // MARK: - safetensors

    /// safetensors: 8-byte little-endian header length N, N bytes of JSON (`{"name": {"dtype", "shape",
    /// "data_offsets": [begin, end]}, "__metadata__": {...}}`, offsets relative to the byte buffer after the header),
    /// then the little-endian tensor data.
    static func readSafetensors(_ data: Data, path: String, skipping skip: (String) -> Bool) throws -> [WeightTensor] {
        func invalid(_ detail: String) -> PretrainedWeightsError { .invalidFormat(file: path, detail: detail) }
        guard data.count >= 8 else { throw invalid("shorter than the 8-byte header length") }
        let headerLength = data.prefix(8).enumerated().reduce(UInt64(0)) { $0 | (UInt64($1.element) << (8 * UInt64($1.offset))) }
        guard headerLength <= UInt64(data.count - 8) else {
            throw invalid("safetensors header length \(headerLength) exceeds the file (\(data.count) bytes)")
        }
        let start = 8 + Int(headerLength), bufferLength = data.count - start
        let headerData = data.subdata(in: 8..<start)
        guard let object = try? JSONSerialization.jsonObject(with: headerData), let header = object as? [String: Any] else {
            throw invalid("the safetensors header is not a JSON object")
        }
        var entries: [(name: String, dtype: String, shape: [Int], begin: Int, end: Int)] = []
        for (name, value) in header where name != "__metadata__" {
            guard let entry = value as? [String: Any], let dtype = entry["dtype"] as? String,
                  let shapeItems = entry["shape"] as? [Any], let offsetItems = entry["data_offsets"] as? [Any] else {
                throw invalid("bad header entry for '\(name)' (needs dtype, shape, data_offsets)")
            }
            let shape = shapeItems.compactMap { ($0 as? NSNumber)?.intValue }
            let offsets = offsetItems.compactMap { ($0 as? NSNumber)?.intValue }
            guard shape.count == shapeItems.count, shape.allSatisfy({ $0 >= 0 }), offsets.count == 2,
                  offsets[0] >= 0, offsets[0] <= offsets[1], offsets[1] <= bufferLength else {
                throw invalid("'\(name)': shape \(shapeItems) or data_offsets \(offsetItems) invalid for a \(bufferLength)-byte buffer")
            }
            entries.append((name, dtype, shape, offsets[0], offsets[1]))
        }
        entries.sort { ($0.begin, $0.name) < ($1.begin, $1.name) }
        var tensors: [WeightTensor] = []
        for entry in entries where !skip(entry.name) {
            let count = entry.shape.reduce(1, *)
            guard let width = elementSize[entry.dtype] else {
                throw PretrainedWeightsError.unsupportedDType(file: path, name: entry.name, dtype: entry.dtype)
            }
            guard entry.end - entry.begin == count * width else {
                throw invalid("'\(entry.name)': data_offsets [\(entry.begin), \(entry.end)] hold \(entry.end - entry.begin) bytes, "
                    + "shape \(entry.shape) of \(entry.dtype) needs \(count * width)")
            }
            let values: [Float] = data.withUnsafeBytes { raw in
                let base = start + entry.begin
                func load<T: FixedWidthInteger>(_ i: Int, _: T.Type) -> T {
                    T(littleEndian: raw.loadUnaligned(fromByteOffset: base + i * MemoryLayout<T>.size, as: T.self))
                }
                switch entry.dtype {
                case "F32": return (0..<count).map { Float(bitPattern: load($0, UInt32.self)) }
                case "F64": return (0..<count).map { Float(Double(bitPattern: load($0, UInt64.self))) }
                case "F16": return (0..<count).map { halfToFloat(load($0, UInt16.self)) }
                default: return (0..<count).map { Float(bitPattern: UInt32(load($0, UInt16.self)) << 16) }  // BF16
                }
            }
            tensors.append(WeightTensor(name: entry.name, shape: entry.shape, values: values))
        }
        return tensors
    }

    /// Bytes per element of the dtypes read.
    static let elementSize: [String: Int] = ["F32": 4, "F64": 8, "F16": 2, "BF16": 2]

    /// IEEE 754 binary16 → binary32 (exact: every half value is a float value).
    static func halfToFloat(_ bits: UInt16) -> Float {
        let sign = UInt32(bits >> 15) << 31
        let exponent = UInt32((bits >> 10) & 0x1F)
        let mantissa = UInt32(bits & 0x3FF)
        switch exponent {
        case 0:
            // Zero or subnormal: mantissa · 2^-24.
            let magnitude = Float(mantissa) * Float(sign: .plus, exponent: -24, significand: 1)
            return sign != 0 ? -magnitude : magnitude
        case 0x1F:
            return Float(bitPattern: sign | 0x7F80_0000 | (mantissa << 13))
        default:
            return Float(bitPattern: sign | ((exponent + 112) << 23) | (mantissa << 13))
        }
    }

    // MARK: - HDF5

    /// HDF5: every object at the root is a dataset named by its state-dict key (HDF5 converts any float or integer
    /// type to float32 on reading).
    static func readHDF5(path: String, skipping skip: (String) -> Bool) throws -> [WeightTensor] {
        do {
            let file = try HDF5File(path: path, mode: .readOnly)
            defer { try? file.close() }
            var tensors: [WeightTensor] = []
            for name in try file.children(of: "/") where !skip(name) {
                let objectPath = "/" + name
                guard try file.kind(of: objectPath) == .dataset else {
                    throw PretrainedWeightsError.invalidFormat(
                        file: path, detail: "'\(name)' is a group; weights must be datasets at the root named like 'layer1.0.conv1.weight'")
                }
                tensors.append(WeightTensor(name: name, shape: try file.shape(of: objectPath), values: try file.readFloats(objectPath)))
            }
            return tensors
        } catch let error as NativeError {
            throw PretrainedWeightsError.unreadable(file: path, detail: "\(error)")
        }
    }
}
