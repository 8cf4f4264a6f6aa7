import CMPI
import Foundation
import LorsNative
import XCTest

/// MPI in a plain test process (singleton MPI, world size 1). Under `mpirun -np 2` only `MPIMultiRankTests`
/// should be selected.
final class MPISingletonTests: XCTestCase {
    private var world: MPIComm!

    override func setUpWithError() throws {
        world = try MPIEnvironment.initialize()
        if world.size != 1 {
            struct WrongWorldSize: Error, CustomStringConvertible {
                let size: Int
                var description: String {
                    "MPISingletonTests expect a world of size 1 (run them outside mpirun), this process runs in one of size \(size)"
                }
            }
            throw WrongWorldSize(size: Int(world.size))
        }
    }

    func testInitialiseIsIdempotentAndGivesRankZeroOfOne() throws {
        XCTAssertTrue(MPIEnvironment.isInitialized)
        let again = try MPIEnvironment.initialize()
        XCTAssertEqual(again.handle, world.handle)
        XCTAssertEqual(world.rank, 0)
        XCTAssertEqual(world.size, 1)
        XCTAssertEqual(try MPIEnvironment.rank(), 0)
        XCTAssertEqual(try MPIEnvironment.size(), 1)
        XCTAssertEqual(MPIEnvironment.cachedWorldRank, 0)
        XCTAssertNotNil(MPIEnvironment.providedThreadLevel)
        XCTAssertGreaterThanOrEqual(MPIEnvironment.providedThreadLevel!, .funneled)
        XCTAssertFalse(try MPIEnvironment.processorName().isEmpty)
    }

    func testAllReduceOnOneRankKeepsValues() throws {
        var floats: [Float] = [1.5, -2, 3]
        try world.allReduce(&floats, op: .sum)
        XCTAssertEqual(floats, [1.5, -2, 3])
        var doubles: [Double] = [4, 5]
        try world.allReduce(&doubles, op: .max)
        XCTAssertEqual(doubles, [4, 5])
        var integers: [Int64] = [Int64.max, -7]
        try world.allReduce(&integers, op: .min)
        XCTAssertEqual(integers, [Int64.max, -7])
        XCTAssertEqual(try world.allReduce(Int64(42)), 42)
        var empty: [Float] = []
        try world.allReduce(&empty)
        XCTAssertEqual(empty, [])

        let pointer = UnsafeMutablePointer<Float>.allocate(capacity: 4)
        defer { pointer.deallocate() }
        pointer.initialize(repeating: 2, count: 4)
        try world.allReduce(pointer, count: 4, op: .sum)
        XCTAssertEqual(Array(UnsafeBufferPointer(start: pointer, count: 4)), [2, 2, 2, 2])
    }

    func testBroadcastAndGather() throws {
        var values: [Float] = [1, 2, 3]
        try world.broadcast(&values, root: 0)
        XCTAssertEqual(values, [1, 2, 3])
        XCTAssertEqual(try world.broadcast("héllo, ranks"), "héllo, ranks")
        XCTAssertEqual(try world.broadcast(""), "")
        XCTAssertEqual(try world.broadcast(bytes: [0, 255, 7]), [0, 255, 7])
        XCTAssertEqual(try world.broadcast(data: Data([9, 8])), Data([9, 8]))
        XCTAssertEqual(try world.broadcast(Double(2.25)), 2.25)
        XCTAssertEqual(try world.allGather(Int64(5)), [5])
        XCTAssertEqual(try world.allGather(Double(0.5)), [0.5])
        XCTAssertEqual(try world.gather("rank zero"), ["rank zero"])
        try world.barrier()
    }

    func testIAllReduceCompletes() throws {
        var values: [Double] = [1, 2, 3]
        try values.withUnsafeMutableBufferPointer { buffer in
            let request = try world.iAllReduce(buffer, op: .sum)
            var polls = 0
            while try !request.test() {
                polls += 1
                XCTAssertLessThan(polls, 10_000_000, "MPI_Iallreduce never completed")
            }
            XCTAssertTrue(request.isComplete)
            try request.wait()  // waiting on a completed request is a no-op
        }
        XCTAssertEqual(values, [1, 2, 3])

        var floats: [Float] = [7]
        try floats.withUnsafeMutableBufferPointer { buffer in
            try world.iAllReduce(buffer, op: .max).wait()
        }
        XCTAssertEqual(floats, [7])
    }

    func testMisuseAndLibraryErrorsAreTyped() throws {
        let badRoot = assertThrowsNativeError(try world.broadcast("x", root: 3))
        XCTAssertEqual(badRoot?.library, .usage)
        XCTAssertTrue(badRoot?.description.contains("root 3") ?? false, "\(String(describing: badRoot))")

        // A null communicator makes MPI itself fail; MPI_ERRORS_RETURN turns that into an error code.
        let library = assertThrowsNativeError(try MPIComm(handle: lors_mpi_comm_null(), name: "null communicator"))
        XCTAssertEqual(library?.library, .mpi)
        XCTAssertEqual(library?.call, "MPI_Comm_rank")
        XCTAssertFalse(library?.message.isEmpty ?? true)
        XCTAssertTrue(library?.description.hasPrefix("[rank 0] MPI error in MPI_Comm_rank") ?? false, "\(String(describing: library))")
    }
}
