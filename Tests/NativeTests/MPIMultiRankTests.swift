import Foundation
import LorsNative
import XCTest

/// Tests that need several MPI ranks. They run only when `LORS_EXPECT_RANKS` is set, and then fail unless the
/// world has exactly that many ranks:
///
///     swift build --build-tests
///     LORS_EXPECT_RANKS=2 OPENBLAS_NUM_THREADS=1 mpirun --allow-run-as-root --oversubscribe -np 2 \
///         .build/debug/lorsPackageTests.xctest NativeTests.MPIMultiRankTests
///
/// (`bash cluster/test.sh` does this.) Every rank executes every collective, even after a failed
/// assertion, so a failure on one rank cannot leave the others waiting.
final class MPIMultiRankTests: XCTestCase {
    private struct RankCountMismatch: Error, CustomStringConvertible {
        let expected: Int
        let actual: Int
        var description: String {
            "LORS_EXPECT_RANKS=\(expected) but MPI_COMM_WORLD has \(actual) rank(s): run under mpirun -np \(expected)"
        }
    }

    private struct BadExpectation: Error, CustomStringConvertible {
        let text: String
        var description: String { "LORS_EXPECT_RANKS must be a positive integer, got '\(text)'" }
    }

    private var world: MPIComm!

    override func setUpWithError() throws {
        guard let text = ProcessInfo.processInfo.environment["LORS_EXPECT_RANKS"] else {
            throw XCTSkip("""
                multi-rank MPI test: set LORS_EXPECT_RANKS and run under mpirun, e.g. \
                LORS_EXPECT_RANKS=2 mpirun --allow-run-as-root --oversubscribe -np 2 \
                .build/debug/lorsPackageTests.xctest NativeTests.MPIMultiRankTests (or bash cluster/test.sh)
                """)
        }
        guard let expected = Int(text), expected >= 1 else {
            throw BadExpectation(text: text)
        }
        world = try MPIEnvironment.initialize()
        if world.size != expected {
            // Thrown from setUp: the test fails (an error, not a skip) before any collective runs.
            throw RankCountMismatch(expected: expected, actual: world.size)
        }
        XCTAssertGreaterThan(world.size, 1, "multi-rank tests need at least 2 ranks")
    }

    private var rank: Int { world.rank }
    private var size: Int { world.size }
    /// 1 + 2 + ... + size
    private var rankSum: Int { size * (size + 1) / 2 }

    func testAllReduceSumsMaximaAndMinimaAcrossRanks() throws {
        var floats: [Float] = [Float(rank + 1), 1, -Float(rank)]
        try world.allReduce(&floats, op: .sum)
        XCTAssertEqual(floats, [Float(rankSum), Float(size), -Float(rankSum - size)], "rank \(rank)")

        var doubles: [Double] = [Double(rank), -Double(rank)]
        try world.allReduce(&doubles, op: .max)
        XCTAssertEqual(doubles, [Double(size - 1), 0], "rank \(rank)")

        var integers: [Int64] = [Int64(rank) + (1 << 40)]
        try world.allReduce(&integers, op: .min)
        XCTAssertEqual(integers, [1 << 40], "rank \(rank)")

        XCTAssertEqual(try world.allReduce(Int64(rank + 1), op: .sum), Int64(rankSum))
        XCTAssertEqual(try world.allGather(Int64(rank * 10)), (0..<size).map { Int64($0 * 10) })
        XCTAssertEqual(try world.allGather(Double(rank) + 0.5), (0..<size).map { Double($0) + 0.5 })
        try world.barrier()
    }

    func testBroadcastFromEveryRoot() throws {
        for root in 0..<size {
            var values: [Float] = rank == root ? [Float(root), 2.5, -1] : [0, 0, 0]
            try world.broadcast(&values, root: root)
            XCTAssertEqual(values, [Float(root), 2.5, -1], "rank \(rank), root \(root)")
            let text = try world.broadcast(rank == root ? "from rank \(root) ✓" : "ignored, longer text", root: root)
            XCTAssertEqual(text, "from rank \(root) ✓", "rank \(rank)")
            let bytes = try world.broadcast(bytes: rank == root ? [UInt8](repeating: UInt8(root), count: 5) : [], root: root)
            XCTAssertEqual(bytes, [UInt8](repeating: UInt8(root), count: 5), "rank \(rank)")
        }
        let names = try world.gather("name-\(rank)", root: 0)
        XCTAssertEqual(names, rank == 0 ? (0..<size).map { "name-\($0)" } : [])
    }

    func testIAllReduceOverlapsAndCompletes() throws {
        let count = 1 << 16
        var values = [Float](repeating: Float(rank + 1), count: count)
        try values.withUnsafeMutableBufferPointer { buffer in
            let request = try world.iAllReduce(buffer, op: .sum)
            var polls = 0
            while try !request.test() { polls += 1 }
            XCTAssertTrue(request.isComplete)
        }
        XCTAssertEqual(values.first, Float(rankSum))
        XCTAssertTrue(values.allSatisfy { $0 == Float(rankSum) }, "rank \(rank)")

        var second = [Double](repeating: Double(rank), count: 3)
        try second.withUnsafeMutableBufferPointer { buffer in
            try world.iAllReduce(buffer, op: .max).wait()
        }
        XCTAssertEqual(second, [Double](repeating: Double(size - 1), count: 3))
    }

    /// Each rank writes its own flat range of a [3, 5, 7] tensor collectively; rank 0 reads it back serially,
    /// then all ranks read it in parallel, each its own range plus the whole tensor.
    func testCollectiveParallelHDF5WriteOfFlatRanges() throws {
        var directory = ""
        if rank == 0 { directory = try makeTemporaryDirectory("lors-mpi-hdf5").path }
        directory = try world.broadcast(directory, root: 0)
        let path = directory + "/parallel.h5"
        defer {
            try? world.barrier()
            if rank == 0 { try? FileManager.default.removeItem(atPath: directory) }
        }

        let shape = [3, 5, 7]
        let total = shape.reduce(1, *)
        let expected = flatIndexValues(total)
        let myRange = (rank * total / size)..<((rank + 1) * total / size)

        let file = try HDF5File(path: path, mode: .create, comm: world)
        try file.createDataset("/model/blocks.0.weight", shape: shape)
        try file.write("/model/blocks.0.weight", values: Array(expected[myRange]), range: myRange)
        // A collective write in which only the last rank moves data (the others pass empty ranges).
        try file.createDataset("/model/bias", shape: [4])
        try file.write("/model/bias", values: rank == size - 1 ? [1, 2, 3, 4] : [], range: rank == size - 1 ? 0..<4 : 0..<0)
        try file.setAttribute("world_size", .int64(Int64(size)), on: "/model")
        try file.setAttribute("config", .string("parallel"), on: "/model")
        try file.close()
        try world.barrier()

        var rankZeroSawEverything = Int64(1)
        if rank == 0 {
            let serial = try HDF5File(path: path, mode: .readOnly)
            let whole = try serial.readFloats("/model/blocks.0.weight")
            XCTAssertEqual(whole, expected)
            XCTAssertEqual(try serial.readFloats("/model/bias"), [1, 2, 3, 4])
            XCTAssertEqual(try serial.int64Attribute("world_size", of: "/model"), Int64(size))
            XCTAssertEqual(try serial.stringAttribute("config", of: "/model"), "parallel")
            try serial.close()
            rankZeroSawEverything = whole == expected ? 1 : 0
        }
        XCTAssertEqual(try world.broadcast(rankZeroSawEverything, root: 0), 1, "rank 0 read back a different tensor")

        let parallel = try HDF5File(path: path, mode: .readOnly, comm: world)
        XCTAssertEqual(try parallel.readFloats("/model/blocks.0.weight", range: myRange), Array(expected[myRange]), "rank \(rank)")
        XCTAssertEqual(try parallel.readFloats("/model/blocks.0.weight"), expected, "rank \(rank)")
        XCTAssertEqual(try parallel.children(of: "/model"), ["bias", "blocks.0.weight"])
        try parallel.close()
    }
}
