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

    /// Array sums in one collective (rank order), Int64 min/max, string broadcast, rooted gather and all-gather of
    /// strings of different lengths; local and simulated communicators have no MPI handle.
    func testArrayReductionsGathersAndStrings() throws {
        let out = try SimulatedWorld(size: 3).run { comm -> ([Double], [Int64], Int64, Int64, String, [[UInt8]], [String], Bool) in
            let r = comm.rank
            let doubles = try comm.allReduceSum([Double(r) + 0.25, -Double(r), 1e16])
            let ints = try comm.allReduceSum([Int64(r), Int64.max - 1, 0])
            let low = try comm.allReduceMin(Int64(10 - r)), high = try comm.allReduceMax(Int64(10 - r))
            let text = try comm.broadcast(r == 1 ? "from rank 1 ✓" : "ignored", root: 1)
            let gathered = try comm.gather(bytes: Array(repeating: UInt8(r), count: r + 1), root: 2)
            let strings = try comm.allGather(String(repeating: "x", count: r))
            return (doubles, ints, low, high, text, gathered, strings, comm.mpi == nil)
        }
        for (rank, o) in out.enumerated() {
            XCTAssertEqual(o.0.map(\.bitPattern), [((0.25 + 1.25) + 2.25), ((-0.0 + -1.0) + -2.0), ((1e16 + 1e16) + 1e16)].map(\.bitPattern))
            XCTAssertEqual(o.1, [3, (Int64.max - 1) &+ (Int64.max - 1) &+ (Int64.max - 1), 0], "sums wrap like MPI's")
            XCTAssertEqual(o.2, 8)
            XCTAssertEqual(o.3, 10)
            XCTAssertEqual(o.4, "from rank 1 ✓")
            XCTAssertEqual(o.5, rank == 2 ? [[0], [1, 1], [2, 2, 2]] : [], "rank \(rank)")
            XCTAssertEqual(o.6, ["", "x", "xx"])
            XCTAssertTrue(o.7)
        }
        let local = LocalCommunicator()
        XCTAssertNil(local.mpi)
        XCTAssertEqual(try local.allReduceSum([1.5, 2]), [1.5, 2])
        XCTAssertEqual(try local.allReduceSum([Int64(4)]), [4])
        XCTAssertEqual(try local.allReduceMin(3), 3)
        XCTAssertEqual(try local.allReduceMax(3), 3)
        XCTAssertEqual(try local.gather(bytes: [7], root: 0), [[7]])
        XCTAssertThrowsError(try local.gather(bytes: [7], root: 1))
        // A different count at the same position is a mismatch, not a silent truncation.
        XCTAssertThrowsError(try SimulatedWorld(size: 2).run { comm in
            _ = try comm.allReduceSum([Double](repeating: 1, count: comm.rank + 1))
        }) { error in
            guard case DistributedError.collectiveMismatch = error else { return XCTFail("\(error)") }
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
