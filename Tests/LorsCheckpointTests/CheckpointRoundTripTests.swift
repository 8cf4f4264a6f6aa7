import Foundation
import LorsCheckpoint
import LorsModels
import LorsNN
import LorsOptim
import LorsTensor
import XCTest

final class CheckpointRoundTripTests: XCTestCase {
    func testModelOptimizerAndMetadataRoundTripBitwise() throws {
        let work = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: work) }
        let (model, optimizer) = makeTrainedModel()
        let directory = CheckpointDirectory(workDirectory: work)
        let commit = try saveCheckpoint(directory, step: 12, model: model, optimizer: optimizer)
        XCTAssertEqual((commit.path as NSString).lastPathComponent, "step_00000012.h5")
        XCTAssertEqual(directory.latestName(), "step_00000012.h5")

        let (fresh, freshOptimizer) = makeTrainedModel(seed: 99, steps: 0)
        let reader = try CheckpointReader(path: commit.path)
        try reader.loadModel(into: fresh)
        try reader.loadOptimizer(freshOptimizer, model: fresh)
        for ((name, a), (_, b)) in zip(model.namedParameters(), fresh.namedParameters()) {
            XCTAssertEqual(bits(a), bits(b), name)
        }
        let expected = optimizer.stateDictionary(), actual = freshOptimizer.stateDictionary()
        XCTAssertEqual(Set(expected.keys), Set(actual.keys))
        XCTAssertGreaterThan(expected.count, 1 + 2 * model.namedParameters().count)
        for (key, tensor) in expected { XCTAssertEqual(bits(tensor), bits(actual[key]!), key) }
        XCTAssertEqual(freshOptimizer.stepCount, 2)

        XCTAssertEqual(reader.metadata, makeMetadata(step: 12).with(created: reader.metadata.created))
        XCTAssertEqual(reader.metadata.seed, 0xDEAD_BEEF_0000_0001)
        XCTAssertEqual(reader.metadata.extra, ["sampler": "v1"])
        XCTAssertEqual(reader.optimizerMetadata, OptimizerMetadata(describing: optimizer))
        XCTAssertEqual(reader.optimizerMetadata?.type, "adamw")
        XCTAssertEqual(try reader.shape(of: "/model/blocks.1.attn.qkv.weight"), [48, 16])
        XCTAssertTrue(try reader.contains("/optimizer/blocks.1.attn.qkv.weight/exp_avg_sq"))
        try reader.verify()

        // The two models now continue identically.
        for (name, p) in model.namedParameters() { p.grad = Tensor(repeating: 0.25, shape: p.shape); _ = name }
        for (_, p) in fresh.namedParameters() { p.grad = Tensor(repeating: 0.25, shape: p.shape) }
        optimizer.step(); freshOptimizer.step()
        for ((name, a), (_, b)) in zip(model.namedParameters(), fresh.namedParameters()) { XCTAssertEqual(bits(a), bits(b), name) }
    }

    func testChecksumIsZlibCRC32OfLittleEndianFloats() {
        // CRC-32 of "123456789" is the catalogue check value 0xCBF43926.
        XCTAssertEqual(CRC32.checksum(bytes: Array("123456789".utf8)), 0xCBF4_3926)
        let values: [Float] = (0..<1000).map { Float($0) * 0.37 - 5 }
        let whole = CRC32.checksum(values)
        let first = CRC32.checksum(Array(values[..<333])), second = CRC32.checksum(Array(values[333...]))
        XCTAssertEqual(CRC32.combine(first, second, secondLength: (values.count - 333) * 4), whole)
    }

    func testShardedWriteTilesAndCombinesChecksums() throws {
        let work = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: work) }
        let path = work + "/shards.h5"
        let values: [Float] = (0..<60).map { Float($0) }
        // Serially, one "rank" must cover everything: the union of shards must tile the tensor.
        let bad = CheckpointWriter(path: path, faultInjection: nil)
        bad.addShard("/optimizer/w/exp_avg", shape: [6, 10], range: 0..<30, values: Array(values[0..<30]))
        let error = checkpointError { try bad.write(metadata: makeMetadata(step: 1)) }
        XCTAssertEqual(error?.dataset, "/optimizer/w/exp_avg")
        XCTAssertTrue("\(error!)".contains("30..<60"), "\(error!)")

        let good = CheckpointWriter(path: path, faultInjection: nil)
        good.addShard("/optimizer/w/exp_avg", shape: [6, 10], range: 0..<60, values: values)
        try good.write(metadata: makeMetadata(step: 1))
        let reader = try CheckpointReader(path: path)
        XCTAssertEqual(try reader.read("/optimizer/w/exp_avg"), values)
        XCTAssertEqual(try reader.read("/optimizer/w/exp_avg", range: 13..<47), Array(values[13..<47]))
        XCTAssertEqual(try reader.storedChecksum("/optimizer/w/exp_avg"), CRC32.checksum(values))
    }
}

extension CheckpointMetadata {
    func with(created: String) -> CheckpointMetadata {
        var copy = self
        copy.created = created
        return copy
    }
}
