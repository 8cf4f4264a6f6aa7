import Foundation
import XCTest
import LorsTensor

/// A reference fixture written by `scripts/make_fixtures.py`: `<name>.bin` (little-endian float32,
/// tensors back to back) and `<name>.json` (`tensors: {key: {offset, shape}}`, `meta`).
struct ReferenceFixture {
    let name: String
    let index: [String: (offset: Int, shape: [Int])]
    let meta: [String: Any]
    private let values: [Float]

    init(_ name: String) throws {
        guard let jsonURL = Bundle.module.url(forResource: name, withExtension: "json", subdirectory: "Fixtures"),
              let binURL = Bundle.module.url(forResource: name, withExtension: "bin", subdirectory: "Fixtures") else {
            throw NSError(domain: "ReferenceFixture", code: 2,
                          userInfo: [NSLocalizedDescriptionKey: "fixture \(name) missing: run python3 scripts/make_fixtures.py"])
        }
        let object = try JSONSerialization.jsonObject(with: Data(contentsOf: jsonURL)) as? [String: Any]
        guard let tensors = object?["tensors"] as? [String: [String: Any]] else {
            throw NSError(domain: "ReferenceFixture", code: 1, userInfo: [NSLocalizedDescriptionKey: "\(name).json has no 'tensors'"])
        }
        var index: [String: (Int, [Int])] = [:]
        for (key, entry) in tensors {
            index[key] = ((entry["offset"] as? Int) ?? -1, (entry["shape"] as? [Int]) ?? [])
        }
        let data = try Data(contentsOf: binURL)
        precondition(data.count % 4 == 0, "\(name).bin is not a float32 array")
        values = data.withUnsafeBytes { raw in
            (0..<(data.count / 4)).map { Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * $0, as: UInt32.self))) }
        }
        self.name = name
        self.index = index
        self.meta = (object?["meta"] as? [String: Any]) ?? [:]
    }

    /// The tensor stored under `key` (fails the test if absent).
    func tensor(_ key: String, requiresGrad: Bool = false, file: StaticString = #filePath, line: UInt = #line) -> Tensor {
        guard let entry = index[key] else {
            XCTFail("fixture \(name) has no tensor '\(key)'", file: file, line: line)
            return Tensor.zeros([0])
        }
        let n = entry.shape.reduce(1, *)
        precondition(entry.offset >= 0 && entry.offset + n <= values.count, "fixture \(name): '\(key)' out of range")
        return Tensor(Array(values[entry.offset..<(entry.offset + n)]), shape: entry.shape, requiresGrad: requiresGrad)
    }

    func int(_ key: String) -> Int { (meta[key] as? Int) ?? -1 }
    func ints(_ key: String, _ field: String? = nil) -> [Int] {
        if let field { return ((meta[key] as? [String: Any])?[field] as? [Int]) ?? [] }
        return (meta[key] as? [Int]) ?? []
    }
}
