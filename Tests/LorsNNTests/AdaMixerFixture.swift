import Foundation
import XCTest
import LorsModels
import LorsNN
import LorsTensor

/// The PyTorch reference written by `scripts/make_adamixer_fixtures.py`: float32 tensors in `adamixer_reference.bin`,
/// indexed by name in `adamixer_reference.json`.
struct AdaMixerFixture {
    let values: [Float]
    let index: [String: (offset: Int, shape: [Int])]

    static func load() throws -> AdaMixerFixture {
        let dir = try XCTUnwrap(Bundle.module.url(forResource: "Fixtures", withExtension: nil), "Fixtures resource missing")
        let data = try Data(contentsOf: dir.appendingPathComponent("adamixer_reference.bin"))
        let values = data.withUnsafeBytes { raw in (0..<(data.count / 4)).map { Float(bitPattern: UInt32(littleEndian: raw.load(fromByteOffset: $0 * 4, as: UInt32.self))) } }
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("adamixer_reference.json"))) as! [String: Any]
        var index: [String: (Int, [Int])] = [:]
        for (name, entry) in json["tensors"] as! [String: [String: Any]] {
            index[name] = ((entry["offset"] as! NSNumber).intValue, (entry["shape"] as! [NSNumber]).map(\.intValue))
        }
        return AdaMixerFixture(values: values, index: index)
    }

    func tensor(_ name: String, requiresGrad: Bool = false) throws -> Tensor {
        let entry = try XCTUnwrap(index[name], "fixture has no tensor '\(name)'")
        let count = entry.shape.reduce(1, *)
        return Tensor(Array(values[entry.offset..<entry.offset + count]), shape: entry.shape, requiresGrad: requiresGrad)
    }

    /// Assigns every parameter of `decoder` from `<model>/param/<name>`, checking that the fixture has exactly these.
    func loadParameters(into decoder: Module, model: String) throws {
        let names = decoder.namedParameters().map(\.0)
        let fixtureNames = index.keys.filter { $0.hasPrefix(model + "/param/") }.map { String($0.dropFirst(model.count + 7)) }
        XCTAssertEqual(Set(names), Set(fixtureNames), "parameter names of the Swift and PyTorch \(model) decoders")
        for (name, p) in decoder.namedParameters() {
            let t = try tensor(model + "/param/" + name)
            XCTAssertEqual(t.shape, p.shape, name)
            p.assign(t)
        }
    }

    func inputs() throws -> (features: [Tensor], xyzr: Tensor, content: Tensor) {
        (try (0..<4).map { try tensor("features.\($0)", requiresGrad: true) }, try tensor("xyzr"), try tensor("content", requiresGrad: true))
    }

    /// Per stage: logits, boxes, content, flattened and concatenated (the fixture's `out`).
    static func flatten(_ outputs: [AdaMixerStageOutput]) -> Tensor {
        Tensor.concat(outputs.flatMap { [$0.classLogits.reshaped([-1]), $0.boxes.reshaped([-1]), $0.content.reshaped([-1])] }, axis: 0)
    }
}
