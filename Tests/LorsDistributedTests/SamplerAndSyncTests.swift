import LorsNN
import LorsTensor
import XCTest
@testable import LorsDistributed

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
            if comm.rank == 2 { model.b[1].storage.pointer[model.b[1].offset + 3] += 1e-6 }
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
