import XCTest
import LorsModels
import LorsNN
import LorsTensor
import LorsTestSupport

/// The ResNet backbone: BasicBlock ResNet-18 against the PyTorch reference of `scripts/make_resnet_fixtures.py`
/// (torchvision's layout and names at base width 8, frozen BatchNorm and GroupNorm), layouts, output channels and
/// `frozenStages`.
///
/// Tolerance: float32 through 17 convs with norms; values of order 1, relative rounding ~1e-7 per op accumulated over
/// sums of up to 4,608 products, so 1e-4 relative (of each level's largest magnitude) leaves a wide margin, while a
/// wrong stride, padding, residual or norm gives O(1) errors.
final class ResNetTests: XCTestCase {
    /// Loads every parameter and buffer of `model` from the fixture by name, checking that the names match exactly.
    private func load(_ fixture: ReferenceFixture, _ kind: String, into model: Module) {
        for (section, named) in [("param", model.namedParameters()), ("buffer", model.namedBuffers())] {
            let prefix = "\(kind)/\(section)/"
            let fixtureNames = Set(fixture.index.keys.filter { $0.hasPrefix(prefix) }.map { String($0.dropFirst(prefix.count)) })
            XCTAssertEqual(Set(named.map(\.0)), fixtureNames, "\(section) names of the Swift and PyTorch \(kind) ResNets")
            for (name, t) in named {
                let value = fixture.tensor(prefix + name)
                XCTAssertEqual(value.shape, t.shape, name)
                t.assign(value)
            }
        }
    }

    private func checkReference(_ kind: String, norm: ResNetNorm) throws {
        let fixture = try ReferenceFixture("resnet_reference")
        XCTAssertEqual(fixture.int("width"), 8)
        let model = ResNet(depth: 18, width: fixture.int("width"), norm: norm, frozenStages: -1)
        XCTAssertEqual(model.outChannels, [8, 16, 32, 64])
        load(fixture, kind, into: model)
        let outs = withoutGradients { model(fixture.tensor("input")) }
        XCTAssertEqual(outs.count, 4)
        for (k, out) in outs.enumerated() {
            let expected = fixture.tensor("\(kind)/out.\(k)")
            let scale = expected.toArray().map(abs).max() ?? 1
            XCTAssertGreaterThan(scale, 0.1, "C\(k + 2) reference is not degenerate")
            assertClose(out, expected, rtol: 1e-4, atol: 1e-4 * scale, "\(kind) C\(k + 2)")
        }
    }

    func testResNet18FrozenBatchNormMatchesPyTorch() throws {
        try checkReference("bn", norm: .frozenBatchNorm)
    }

    func testResNet18GroupNormMatchesPyTorch() throws {
        try checkReference("gn", norm: .groupNorm(groups: try ReferenceFixture("resnet_reference").int("gn_groups")))
    }

    /// torchvision's parameter counts less the classifier (`fc`): resnet18 11,689,512 − 513,000, resnet34
    /// 21,797,672 − 513,000, resnet50 25,557,032 − 2,049,000.
    func testParameterCountsMatchTorchvision() {
        XCTAssertEqual(ResNet(depth: 18).parameterCount, 11_176_512)
        XCTAssertEqual(ResNet(depth: 34).parameterCount, 21_284_672)
        XCTAssertEqual(ResNet(depth: 50).parameterCount, 23_508_032)
        // GroupNorm has the same affine parameters as BatchNorm and no buffers.
        XCTAssertEqual(ResNet(depth: 18, norm: .groupNorm(groups: 32)).parameterCount, 11_176_512)
        XCTAssertTrue(ResNet(depth: 18, norm: .groupNorm(groups: 32)).namedBuffers().isEmpty)
        XCTAssertEqual(ResNet(depth: 18).namedBuffers().count, 2 * 20)
    }

    func testNamesFollowTorchvision() {
        let names = Set(ResNet(depth: 18, width: 16).namedParameters().map(\.0))
        for name in ["conv1.weight", "bn1.weight", "bn1.bias", "layer1.0.conv1.weight", "layer1.1.bn2.bias", "layer2.0.downsample.0.weight",
                     "layer2.0.downsample.1.weight", "layer4.1.conv2.weight"] {
            XCTAssertTrue(names.contains(name), name)
        }
        XCTAssertFalse(names.contains("layer1.0.downsample.0.weight"), "layer1 of a BasicBlock ResNet keeps the channel count")
        XCTAssertFalse(names.contains("layer1.0.conv3.weight"))
        XCTAssertTrue(Set(ResNet(depth: 50, width: 8).namedParameters().map(\.0)).contains("layer1.0.downsample.0.weight"))
    }

    func testOutputChannelsPerInstance() {
        XCTAssertEqual(ResNet(depth: 18).outChannels, [64, 128, 256, 512])
        XCTAssertEqual(ResNet(depth: 34, width: 32).outChannels, [32, 64, 128, 256])
        XCTAssertEqual(ResNet(depth: 50).outChannels, [256, 512, 1024, 2048])
        XCTAssertEqual(ResNet(depth: 101, width: 16).outChannels, [64, 128, 256, 512])
        XCTAssertEqual(ResNet.outChannels(depth: 50, width: 32), [128, 256, 512, 1024])
        let model = ResNet(depth: 50, width: 8, norm: .groupNorm(groups: 4))
        model.initializeParameters(seed: 1)
        let outs = withoutGradients { model(randomTensor([1, 3, 64, 64], "resnet.images", requiresGrad: false)) }
        XCTAssertEqual(outs.map { $0.shape }, [[1, 32, 16, 16], [1, 64, 8, 8], [1, 128, 4, 4], [1, 256, 2, 2]])
    }

    /// mmdetection's `frozen_stages`: −1 nothing, 0 the stem, k the stem and layer1…layerk.
    func testFrozenStages() {
        for norm in [ResNetNorm.frozenBatchNorm, .groupNorm(groups: 4)] {
            for frozenStages in -1...4 {
                let model = ResNet(depth: 18, width: 8, norm: norm, frozenStages: frozenStages)
                model.initializeParameters(seed: 2)
                for (name, p) in model.namedParameters() {
                    let stage: Int
                    if name.hasPrefix("layer") { stage = Int(String(name.dropFirst(5).prefix(1)))! } else { stage = 0 }
                    XCTAssertEqual(p.requiresGrad, stage > frozenStages, "\(name) with frozenStages \(frozenStages), \(norm)")
                }
            }
        }
        // Stem only: counted as not trainable.
        let model = ResNet(depth: 18, width: 8, frozenStages: 0)
        XCTAssertEqual(model.parameterCount - model.trainableParameters.reduce(0) { $0 + $1.count }, 3 * 8 * 49 + 2 * 8)
    }
}
