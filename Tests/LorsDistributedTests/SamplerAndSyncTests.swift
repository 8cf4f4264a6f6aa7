import LorsNN
import LorsTensor
import XCTest
@testable import LorsDistributed

final class DistributedSamplerTests: XCTestCase {
    func testGlobalBatchesDoNotDependOnTheWorldSize() throws {
        let one = try DistributedSampler(datasetSize: 50, globalBatchSize: 12, rank: 0, worldSize: 1, seed: 5)
        XCTAssertEqual(one.batchesPerEpoch, 4)
        for world in [2, 3, 4, 6] {
            for epoch in 0..<2 {
                for j in 0..<one.batchesPerEpoch {
                    let concatenated = try (0..<world).flatMap { r in
                        try DistributedSampler(datasetSize: 50, globalBatchSize: 12, rank: r, worldSize: world, seed: 5)
                            .localBatch(epoch: epoch, index: j)
                    }
                    XCTAssertEqual(concatenated, one.globalBatch(epoch: epoch, index: j), "world \(world) epoch \(epoch) batch \(j)")
                }
            }
        }
        XCTAssertNotEqual(one.order(epoch: 0), one.order(epoch: 1), "each epoch reshuffles")
        XCTAssertEqual(one.order(epoch: 0).sorted(), Array(0..<50))
    }

    func testIndivisibleBatchNamesBothNumbers() {
        XCTAssertThrowsError(try DistributedSampler(datasetSize: 50, globalBatchSize: 10, rank: 0, worldSize: 3, seed: 1)) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("10") && text.contains("3"), text)
        }
    }

    func testResumeFromEpochAndBatchIndex() throws {
        let s = try DistributedSampler(datasetSize: 40, globalBatchSize: 8, rank: 1, worldSize: 2, seed: 9)
        let all = s.localBatches(epoch: 3)
        let resumed = s.localBatches(epoch: 3, from: 2)
        XCTAssertEqual(resumed.map(\.index), [2, 3, 4])
        XCTAssertEqual(resumed.map(\.samples), all.dropFirst(2).map(\.samples))
        XCTAssertEqual(s.position(ofStep: 12).epoch, 2)
        XCTAssertEqual(s.position(ofStep: 12).batch, 2)
        XCTAssertEqual(s.sliceStart, 4)
    }

    func testEvaluationShardsCoverEverySampleOnceWithoutPadding() {
        for n in [0, 1, 7, 10, 101] {
            for world in 1...5 {
                let ranges = (0..<world).map { DistributedSampler.evaluationRange(datasetSize: n, rank: $0, worldSize: world) }
                XCTAssertEqual(ranges.flatMap { Array($0) }, Array(0..<n), "n \(n), world \(world)")
                let counts = DistributedSampler.evaluationCounts(datasetSize: n, worldSize: world)
                XCTAssertEqual(counts.reduce(0, +), n)
                XCTAssertLessThanOrEqual((counts.max() ?? 0) - (counts.min() ?? 0), 1)
            }
        }
    }
}

final class ReplicaSynchronizationTests: XCTestCase {
    func testBroadcastMakesEveryReplicaHoldRankZerosState() throws {
        let states = try SimulatedWorld(size: 3).run { comm -> [String: [Float]] in
            let model = SharedStackModel()
            model.initializeParameters(seed: 100 + UInt64(comm.rank))
            try ReplicaSynchronization.broadcastInitialState(model.namedParameters(), communicator: comm)
            return Dictionary(uniqueKeysWithValues: model.namedParameters().map { ($0.0, $0.1.toArray()) })
        }
        let expected = SharedStackModel()
        expected.initializeParameters(seed: 100)
        for s in states {
            for (name, t) in expected.namedParameters() { XCTAssertEqual(s[name], t.toArray(), name) }
        }
    }

    func testMismatchNamesTheFirstDifferingParameterAndRank() throws {
        XCTAssertThrowsError(try SimulatedWorld(size: 3).run { comm in
            let model = SharedStackModel()
            model.initializeParameters(seed: 1)
            if comm.rank == 2 { model.b[1].withMutableHostBuffer { $0[3] += 1e-6 } }
            try ReplicaSynchronization.verifyIdentical(model.namedParameters(), communicator: comm)
        }) { error in
            guard case DistributedError.replicaMismatch(let name, let rank, _) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(name, "layers.1.private_b")
            XCTAssertEqual(rank, 2)
        }
        XCTAssertThrowsError(try SimulatedWorld(size: 2).run { comm in
            let model = SharedStackModel(depth: comm.rank == 0 ? 4 : 3)
            try ReplicaSynchronization.broadcastInitialState(model.namedParameters(), communicator: comm)
        }) { error in
            guard case DistributedError.parameterListMismatch(let rank, _) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(rank, 1)
        }
    }
}

final class SimulatedWorldTests: XCTestCase {
    func testCollectivesMatchMPISemantics() throws {
        let out = try SimulatedWorld(size: 4).run { comm -> ([Float], [Float], [Int64], [[UInt8]], Double) in
            var a: [Float] = [Float(comm.rank + 1), 0.5]
            let request = try comm.startAllReduceSum(UnsafeMutableBufferPointer(start: &a, count: 2))
            try request.wait()
            var b: [Float] = comm.rank == 2 ? [7, 8] : [0, 0]
            try comm.broadcast(&b, root: 2)
            try comm.barrier()
            return (a, b, try comm.allGather(Int64(comm.rank * 10)), try comm.allGather(bytes: Array(repeating: UInt8(comm.rank), count: comm.rank)),
                    try comm.allReduceSum(Double(comm.rank)))
        }
        for o in out {
            XCTAssertEqual(o.0, [10, 2])
            XCTAssertEqual(o.1, [7, 8])
            XCTAssertEqual(o.2, [0, 10, 20, 30])
            XCTAssertEqual(o.3, [[], [1], [2, 2], [3, 3, 3]])
            XCTAssertEqual(o.4, 6)
        }
    }

    func testMismatchedAndMissingCollectivesFailInsteadOfHanging() {
        XCTAssertThrowsError(try SimulatedWorld(size: 2).run { comm in
            if comm.rank == 0 { try comm.barrier() } else { _ = try comm.allGather(Int64(1)) }
        }) { error in
            guard case DistributedError.collectiveMismatch = error else { return XCTFail("\(error)") }
        }
        XCTAssertThrowsError(try SimulatedWorld(size: 3).run { comm in
            if comm.rank != 1 { try comm.barrier() }
        }) { error in
            guard case DistributedError.deadlock = error else { return XCTFail("\(error)") }
        }
    }

    func testBlockingCollectiveDuringARecordedForwardIsRejected() {
        XCTAssertThrowsError(try SimulatedWorld(size: 2).run { comm in
            let x = Tensor.ones([2], requiresGrad: true)
            let y = x * 2
            defer { Tape.shared.reset() }
            try comm.barrier()
            _ = y
        }) { error in
            guard case DistributedError.collectiveDuringRecordedForward = error else { return XCTFail("\(error)") }
        }
        Tape.shared.reset()
    }

    func testShardPartitionIsContiguousAndBalanced() {
        let ranges = ShardedOptimizer.partition(elementCounts: [10, 10, 10, 10, 40], worldSize: 2)
        XCTAssertEqual(ranges, [0..<4, 4..<5])
        let many = ShardedOptimizer.partition(elementCounts: [5], worldSize: 3)
        XCTAssertEqual(many.map(\.count).reduce(0, +), 1)
    }
}
