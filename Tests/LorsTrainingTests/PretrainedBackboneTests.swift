import Foundation
import XCTest
@testable import LorsCheckpoint
import LorsConfig
import LorsModels
import LorsNN
import LorsTensor
import LorsTestSupport
import LorsTraining

/// `model.adamixer.backbone.pretrained`: torchvision ResNet weights loaded into the backbone.
///
/// The end-to-end check runs torchvision's own `resnet18` and `resnet50` (scripts/make_backbone_pretrained_fixtures.py):
/// both sides generate the same float32 weights from a seed (full-size weights are too large to commit), the test writes
/// them under torchvision's state-dict names and shapes as listed by the script (classifier and BatchNorm counters
/// included) to a safetensors file (ResNet-18) and an HDF5 file (ResNet-50), builds the detector through
/// `ModelBuilder.initializedAdaMixer` with `pretrained` pointing at the file, and compares C2–C5 with torchvision's
/// eval-mode outputs (float64). The reader's handling of dtypes is checked on small files written by the reference
/// writers (safetensors' `save_file`, h5py).
///
/// Tolerance: the Swift pass is float32 through 8 (ResNet-18) or 16 (ResNet-50) residual blocks of convolutions with up
/// to 4,608 products per output; the observed error is about 1e-6 of the output scale (outputs reach 2–30, errors
/// ~1e-5). atol 2e-5 × the largest reference value plus rtol 1e-5 leaves a 10-20x margin; a wrongly mapped tensor (a
/// swapped running mean and variance, a transposed or misplaced conv) changes outputs by O(1) of the scale.
final class PretrainedBackboneTests: XCTestCase {
    static let fixtures = Bundle.module.url(forResource: "Fixtures", withExtension: nil)!

    var scratch: URL!

    override func setUpWithError() throws {
        scratch = FileManager.default.temporaryDirectory.appendingPathComponent("lors-pretrained-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: scratch)
    }

    // MARK: - the seeded weights (the script's generator)

    static func fnv1a64(_ text: String) -> UInt64 {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        for byte in text.utf8 { h = (h ^ UInt64(byte)) &* 0x100_0000_01B3 }
        return h
    }

    static func uniforms(_ name: String, _ count: Int, seed: UInt64) -> [Float] {
        let key = fnv1a64(name) ^ seed
        return (0..<count).map { i in
            var z = key &+ UInt64(i + 1) &* 0x9E37_79B9_7F4A_7C15
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            z ^= z >> 31
            return Float(z >> 40) * 0x1p-24
        }
    }

    static func generated(_ name: String, _ shape: [Int], seed: UInt64) -> [Float] {
        let u = uniforms(name, shape.reduce(1, *), seed: seed)
        if name == "input" { return u.map { ($0 - 0.5) * 4 } }
        if name.hasPrefix("fc.") { return u.map { ($0 - 0.5) * 0.0625 } }
        if shape.count == 4 {
            let fanIn = Double(shape[1] * shape[2] * shape[3])
            let s = Float(pow(2.0, (log2((6.0 / fanIn).squareRoot())).rounded(.toNearestOrEven)))
            return u.map { ($0 - 0.5) * 2 * s }
        }
        if name.hasSuffix("running_var") { return u.map { 0.5 + $0 } }
        if name.hasSuffix("running_mean") || name.hasSuffix("bias") { return u.map { ($0 - 0.5) * 0.25 } }
        return u.map { 0.5 + 0.5 * $0 }
    }

    struct Reference {
        let json: [String: Any]
        let values: [Float]

        static func load() throws -> Reference {
            let data = try Data(contentsOf: fixtures.appendingPathComponent("backbone_pretrained.bin"))
            let values = data.withUnsafeBytes { raw in
                (0..<(data.count / 4)).map { Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * $0, as: UInt32.self))) }
            }
            let json = try JSONSerialization.jsonObject(with: Data(contentsOf: fixtures.appendingPathComponent("backbone_pretrained.json")))
            return Reference(json: try XCTUnwrap(json as? [String: Any]), values: values)
        }

        var meta: [String: Any] { json["meta"] as! [String: Any] }

        func tensor(_ name: String) throws -> Tensor {
            let entry = try XCTUnwrap((json["tensors"] as? [String: [String: Any]])?[name], "no tensor \(name)")
            let offset = (entry["offset"] as! NSNumber).intValue, shape = (entry["shape"] as! [NSNumber]).map(\.intValue)
            return Tensor(Array(values[offset..<offset + shape.reduce(1, *)]), shape: shape)
        }
    }

    /// Settings of a detector with this backbone and a decoder as small as the schema allows (only the backbone is run).
    static func settings(depth: Int, pretrained: String, extra: [String] = []) throws -> RunSettings.Model.AdaMixer {
        let overrides = ["model.type=adamixer", "model.adamixer.backbone.depth=\(depth)", "model.adamixer.backbone.pretrained=\(pretrained)",
                         "model.adamixer.content_dim=32", "model.adamixer.feedforward_channels=8", "model.adamixer.num_heads=1",
                         "model.adamixer.sampling_groups=1", "model.adamixer.in_points=1", "model.adamixer.out_points=1",
                         "model.adamixer.num_queries=1", "model.adamixer.num_stages=1"] + extra
        return RunSettings(try ConfigLoader(schema: .lors).load(yaml: "", overrides: overrides)).model.adamixer
    }

    /// torchvision's state dict of `arch` (names and shapes listed by the script) with the seeded values.
    func stateDict(_ reference: Reference, arch: String) throws -> [(name: String, tensor: Tensor)] {
        let info = try XCTUnwrap(reference.meta[arch] as? [String: Any])
        let seed = UInt64((reference.meta["seed"] as! NSNumber).int64Value)
        let layout = try XCTUnwrap(info["state_dict"] as? [[Any]])
        var sum = 0.0
        let firsts = try XCTUnwrap(info["first"] as? [String: [NSNumber]])
        let tensors = layout.map { entry -> (name: String, tensor: Tensor) in
            let name = entry[0] as! String, shape = (entry[1] as! [NSNumber]).map(\.intValue)
            if name.hasSuffix("num_batches_tracked") { return (name, Tensor([0], shape: [1])) }
            let values = Self.generated(name, shape, seed: seed)
            sum += values.reduce(0.0) { $0 + Double($1) }
            if let first = firsts[name] {
                XCTAssertEqual(Array(values.prefix(3)), first.map(\.floatValue), "generator differs from the script's for \(name)")
            }
            return (name, Tensor(values, shape: shape))
        }
        let expectedSum = (info["sum"] as! NSNumber).doubleValue
        XCTAssertEqual(sum, expectedSum, accuracy: 1e-9 * max(1, abs(expectedSum)), "\(arch): generated weights differ from the script's")
        return tensors
    }

    func checkTorchvision(_ arch: String, depth: Int, format: CheckpointExport.Format) throws {
        let reference = try Reference.load()
        let state = try stateDict(reference, arch: arch)
        XCTAssertTrue(state.contains { $0.name == "fc.weight" } && state.contains { $0.name.hasSuffix("num_batches_tracked") })
        let path = scratch.appendingPathComponent("\(arch).\(format.rawValue)").path
        try CheckpointExport.export(state, to: path, format: format)

        let detector = try ModelBuilder.initializedAdaMixer(try Self.settings(depth: depth, pretrained: path), seed: 3)
        let backbone = detector.backbone
        // The file's values replaced the random init (parameters and buffers alike).
        let byName = Dictionary(state.map { ($0.name, $0.tensor) }, uniquingKeysWith: { a, _ in a })
        for (name, tensor) in backbone.namedParameters() + backbone.namedBuffers() {
            XCTAssertTrue(tensor.toArray() == byName[name]?.toArray(), "\(arch): \(name) not loaded from the file")
        }
        // frozen_stages 1 still holds: the stem and layer1 are frozen, layer2 is not.
        let trainable = Dictionary(backbone.namedParameters().map { ($0.0, $0.1.requiresGrad) }, uniquingKeysWith: { a, _ in a })
        XCTAssertEqual(trainable["conv1.weight"], false)
        XCTAssertEqual(trainable["layer1.0.conv1.weight"], false)
        XCTAssertEqual(trainable["layer2.0.conv1.weight"], true)

        let outputs = backbone(try reference.tensor(arch + "/input"))
        for (k, out) in outputs.enumerated() {
            let expected = try reference.tensor("\(arch)/out.\(k)")
            let scale = expected.toArray().map(abs).max()!
            assertClose(out, expected, rtol: 1e-5, atol: 2e-5 * scale, "\(arch) C\(k + 2) (\(format))")
        }
    }

    func testTorchvisionResNet18FromSafetensors() throws {
        try checkTorchvision("resnet18", depth: 18, format: .safetensors)
    }

    func testTorchvisionResNet50FromHDF5() throws {
        try checkTorchvision("resnet50", depth: 50, format: .hdf5)
    }

    // MARK: - formats

    /// Files written by safetensors' `save_file` and by h5py: F32, F16, BF16 and F64 read as the float32 values PyTorch
    /// converts them to; an int64 tensor is read only when skipped.
    func testReferenceWritersFiles() throws {
        let expected = try XCTUnwrap(try JSONSerialization.jsonObject(
            with: Data(contentsOf: Self.fixtures.appendingPathComponent("weights_formats.json"))) as? [String: [String: [String: [NSNumber]]]])
        for (file, key) in [("weights_formats.safetensors", "safetensors"), ("weights_formats.h5", "hdf5")] {
            let path = Self.fixtures.appendingPathComponent(file).path
            let tensors = try PretrainedWeights.read(path: path, skipping: PretrainedWeights.torchvisionClassifierAndCounters)
            let reference = try XCTUnwrap(expected[key])
            XCTAssertEqual(Set(tensors.map(\.name)), Set(reference.keys), file)
            for tensor in tensors {
                XCTAssertEqual(tensor.shape, reference[tensor.name]?["shape"]?.map(\.intValue), "\(file): \(tensor.name)")
                XCTAssertEqual(tensor.values, reference[tensor.name]?["values"]?.map(\.floatValue), "\(file): \(tensor.name)")
            }
        }
        let safetensors = Self.fixtures.appendingPathComponent("weights_formats.safetensors").path
        XCTAssertThrowsError(try PretrainedWeights.read(path: safetensors)) { error in
            XCTAssertEqual(error as? PretrainedWeightsError,
                           .unsupportedDType(file: safetensors, name: "layer.num_batches_tracked", dtype: "I64"))
        }
    }

    /// binary16 edge cases from the IEEE 754 definition.
    func testHalfConversion() {
        XCTAssertEqual(PretrainedWeights.halfToFloat(0x3C00), 1)
        XCTAssertEqual(PretrainedWeights.halfToFloat(0xC000), -2)
        XCTAssertEqual(PretrainedWeights.halfToFloat(0x7BFF), 65504)
        XCTAssertEqual(PretrainedWeights.halfToFloat(0x0001), 0x1p-24)
        XCTAssertEqual(PretrainedWeights.halfToFloat(0x03FF), 1023 * 0x1p-24)
        XCTAssertEqual(PretrainedWeights.halfToFloat(0x0400), 0x1p-14)
        XCTAssertEqual(PretrainedWeights.halfToFloat(0x8000).sign, .minus)
        XCTAssertEqual(PretrainedWeights.halfToFloat(0xFC00), -.infinity)
        XCTAssertTrue(PretrainedWeights.halfToFloat(0x7E00).isNaN)
    }

    /// A truncated or malformed safetensors file is an error naming the file.
    func testMalformedSafetensors() throws {
        let path = scratch.appendingPathComponent("bad.safetensors").path
        func expectInvalid(_ bytes: [UInt8], _ fragment: String, line: UInt = #line) {
            FileManager.default.createFile(atPath: path, contents: Data(bytes))
            XCTAssertThrowsError(try PretrainedWeights.read(path: path), line: line) { error in
                guard case .invalidFormat(let file, let detail)? = error as? PretrainedWeightsError else {
                    return XCTFail("\(error)", line: line)
                }
                XCTAssertEqual(file, path, line: line)
                XCTAssertTrue(detail.contains(fragment), detail, line: line)
            }
        }
        func file(_ header: String, data: [UInt8]) -> [UInt8] {
            let h = Array(header.utf8)
            return (0..<8).map { UInt8((h.count >> (8 * $0)) & 0xFF) } + h + data
        }
        expectInvalid([1, 2, 3], "8-byte")
        expectInvalid(file("{}", data: []).dropLast() + [], "exceeds")
        expectInvalid(file("[1]", data: []), "JSON object")
        expectInvalid(file(#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}"#, data: [0, 0, 0, 0]), "needs 8")
        expectInvalid(file(#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,8]}}"#, data: [0, 0, 0, 0]), "data_offsets")
        XCTAssertThrowsError(try PretrainedWeights.read(path: scratch.appendingPathComponent("absent.safetensors").path)) { error in
            guard case .unreadable? = error as? PretrainedWeightsError else { return XCTFail("\(error)") }
            XCTAssertTrue("\(error)".contains("absent.safetensors"))
        }
    }

    // MARK: - mismatches

    /// A reduced ResNet-18 and its complete torchvision-named state dict.
    func smallBackbone(norm: ResNetNorm = .frozenBatchNorm) -> (ResNet, [(name: String, tensor: Tensor)]) {
        let model = ResNet(depth: 18, width: 8, norm: norm, frozenStages: -1)
        model.initializeParameters(seed: 1)
        let state = (model.namedParameters() + model.namedBuffers()).map { name, t in
            (name: name, tensor: Tensor(Self.generated(name, t.shape, seed: 5), shape: t.shape))
        }
        return (model, state)
    }

    func expectLoadError(_ state: [(name: String, tensor: Tensor)], into model: ResNet, _ check: (PretrainedWeightsError) -> Void,
                         line: UInt = #line) throws {
        let path = scratch.appendingPathComponent("w.safetensors").path
        try CheckpointExport.export(state, to: path, format: .safetensors)
        XCTAssertThrowsError(try ModelBuilder.loadPretrainedBackbone(model, from: path), line: line) { error in
            guard let error = error as? PretrainedWeightsError else { return XCTFail("\(error)", line: line) }
            XCTAssertTrue(error.description.contains(path), error.description, line: line)
            check(error)
        }
    }

    func testMissingWrongShapeAndUnknownTensorsAreErrorsNamingThem() throws {
        let (model, state) = smallBackbone()
        try expectLoadError(state.filter { $0.name != "layer3.0.downsample.1.running_var" }, into: model) { error in
            XCTAssertEqual(error, .missing(file: scratch.appendingPathComponent("w.safetensors").path,
                                           names: ["layer3.0.downsample.1.running_var"]))
        }
        var reshaped = state
        let index = reshaped.firstIndex { $0.name == "layer2.1.conv2.weight" }!
        reshaped[index].tensor = Tensor.zeros([16, 16, 1, 9])
        try expectLoadError(reshaped, into: model) { error in
            XCTAssertEqual(error, .shapeMismatch(file: scratch.appendingPathComponent("w.safetensors").path, name: "layer2.1.conv2.weight",
                                                 expected: [16, 16, 3, 3], found: [16, 16, 1, 9]))
        }
        try expectLoadError(state + [("layer5.0.conv1.weight", Tensor.zeros([2]))], into: model) { error in
            guard case .unexpected(_, let names, _) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(names, ["layer5.0.conv1.weight"])
        }
        // Prefixed names (a detector checkpoint's backbone) and BatchNorm weights for a GroupNorm backbone get a hint.
        try expectLoadError(state.map { ("backbone." + $0.name, $0.tensor) }, into: model) { error in
            XCTAssertTrue(error.description.contains("'backbone.'"), error.description)
        }
        let (groupNormModel, _) = smallBackbone(norm: .groupNorm(groups: 4))
        try expectLoadError(state, into: groupNormModel) { error in
            XCTAssertTrue(error.description.contains("running statistics"), error.description)
        }
        // The classifier and the counters are skipped; nothing is assigned when loading fails.
        let before = model.conv1.weight.toArray()
        try expectLoadError(state.filter { $0.name != "bn1.bias" }, into: model) { _ in }
        XCTAssertEqual(model.conv1.weight.toArray(), before)
        let path = scratch.appendingPathComponent("ok.safetensors").path
        try CheckpointExport.export(state + [("fc.weight", Tensor.zeros([10, 64])), ("fc.bias", Tensor.zeros([10])),
                                             ("bn1.num_batches_tracked", Tensor([3], shape: [1]))], to: path, format: .safetensors)
        try ModelBuilder.loadPretrainedBackbone(model, from: path)
        XCTAssertEqual(model.conv1.weight.toArray(), state.first { $0.name == "conv1.weight" }!.tensor.toArray())
    }

    /// Through the settings: an empty path loads nothing; a missing file is an error naming it.
    func testSettingsPath() throws {
        let narrow = ["model.adamixer.backbone.width=8"]
        let plain = try ModelBuilder.initializedAdaMixer(try Self.settings(depth: 18, pretrained: "\"\"", extra: narrow), seed: 3)
        let again = try ModelBuilder.initializedAdaMixer(try Self.settings(depth: 18, pretrained: "\"\"", extra: narrow), seed: 3)
        XCTAssertEqual(plain.backbone.conv1.weight.toArray(), again.backbone.conv1.weight.toArray())
        XCTAssertNil(ModelBuilder.adamixerConfiguration(try Self.settings(depth: 18, pretrained: "\"\"")).backbonePretrained)
        let missing = scratch.appendingPathComponent("nowhere.safetensors").path
        XCTAssertThrowsError(try ModelBuilder.initializedAdaMixer(try Self.settings(depth: 18, pretrained: missing, extra: narrow), seed: 3)) { error in
            XCTAssertTrue("\(error)".contains(missing), "\(error)")
        }
    }
}
