import Foundation
import LorsNative
import LorsTensor
import XCTest
@testable import LorsDistributed

/// The MPI reducer against the simulated world of the same size and a single rank. Runs only with
/// `LORS_EXPECT_RANKS` set, under `mpirun -np N` (see cluster/test.sh), and fails unless MPI has N ranks:
///
///     LORS_EXPECT_RANKS=3 mpirun --allow-run-as-root --oversubscribe -np 3 \
///         .build/debug/lorsPackageTests.xctest LorsDistributedTests.MPIDataParallelTests
///
/// Every rank runs every collective even after a failed assertion.
final class MPIDataParallelTests: XCTestCase {
    private var communicator: MPICommunicator!

    override func setUpWithError() throws {
        guard let text = ProcessInfo.processInfo.environment["LORS_EXPECT_RANKS"] else {
            throw XCTSkip("multi-rank MPI test: run under mpirun with LORS_EXPECT_RANKS=N (bash cluster/test.sh)")
        }
        guard let expected = Int(text), expected >= 1 else {
            throw DistributedError.usage("LORS_EXPECT_RANKS must be a positive integer, got '\(text)'")
        }
        communicator = try MPICommunicator()
        guard communicator.size == expected else {
            throw DistributedError.usage("LORS_EXPECT_RANKS=\(expected) but MPI_COMM_WORLD has \(communicator.size) rank(s)")
        }
    }

    private func check(_ options: RunOptions, model: ModelCase? = nil, tolerance: Float = 1e-5,
                       file: StaticString = #filePath, line: UInt = #line) throws {
        let train: (Communicator) throws -> RunResult = { comm in
            if let model { return try modelTrainRun(comm, model, options) }
            return try trainRun(comm, options)
        }
        let mpi = try train(communicator)
        // Same bits on every rank.
        let named = mpi.parameters.keys.sorted().map { ($0, Tensor(mpi.parameters[$0]!, shape: [mpi.parameters[$0]!.count])) }
        XCTAssertNoThrow(try ReplicaSynchronization.verifyIdentical(named, communicator: communicator), file: file, line: line)
        let simulated = try SimulatedWorld(size: communicator.size).run { try train($0) }[0]
        let single = try train(LocalCommunicator())
        // The same world size again: the same bits.
        let again = try train(communicator)
        XCTAssertTrue(bitwiseEqual(mpi.parameters, again.parameters), "rank \(communicator.rank): rerun differs", file: file, line: line)
        for (name, reference) in [("simulated world", simulated), ("single rank", single)] {
            let (g, gName) = worstDifference(reference.firstGradients, mpi.firstGradients)
            XCTAssertLessThanOrEqual(g, tolerance, "rank \(communicator.rank): gradient '\(gName)' vs \(name)", file: file, line: line)
            let (p, pName) = worstDifference(reference.parameters, mpi.parameters)
            XCTAssertLessThanOrEqual(p, tolerance, "rank \(communicator.rank): parameter '\(pName)' vs \(name)", file: file, line: line)
        }
        try communicator.barrier()
    }

    /// The communicator's collectives over MPI give what the simulated world of the same size gives (array sums in
    /// one collective, Int64 min/max, strings, rooted gather of different lengths); `mpi` is the wrapped world.
    func testCommunicatorCollectivesEqualSimulation() throws {
        let body: (Communicator) throws -> [String] = { comm in
            let r = comm.rank
            let doubles = try comm.allReduceSum([Double(r) + 0.5, -Double(r)])
            let ints = try comm.allReduceSum([Int64(r), 7])
            let low = try comm.allReduceMin(Int64(10 - r)), high = try comm.allReduceMax(Int64(10 - r))
            let root = comm.size - 1
            let text = try comm.broadcast(r == root ? "from the last rank ✓" : "", root: root)
            let gathered = try comm.gather(bytes: Array(repeating: UInt8(r), count: r), root: root)
            let strings = try comm.allGather(String(repeating: "y", count: r + 1))
            let gatheredStrings = try comm.gather("rank \(r)", root: 0)
            return ["\(doubles)", "\(ints)", "\(low) \(high)", text, "\(gathered)", "\(strings)", "\(gatheredStrings)"]
        }
        let mpi = try body(communicator)
        XCTAssertNotNil(communicator.mpi)
        XCTAssertEqual(communicator.mpi?.size, communicator.size)
        let simulated = try SimulatedWorld(size: communicator.size).run { try body($0) }
        XCTAssertEqual(mpi, simulated[communicator.rank], "rank \(communicator.rank)")
        try communicator.barrier()
    }

    func testReducedGradientsAndParametersEqualSimulationAndSingleRank() throws {
        var options = RunOptions()
        options.clip = 0.05
        try check(options)
    }

    func testZeroOneAdamWEqualsSimulationAndSingleRank() throws {
        var options = RunOptions()
        options.zero = true
        options.adamw = true
        options.microBatches = 2
        options.globalBatch = 24  // 2 micro-batches per rank at np 2, 3 and 4
        try check(options)
    }

    func testLORSViTEqualsSimulationAndSingleRank() throws {
        var options = RunOptions()
        options.clip = 0.5
        options.bucketCapBytes = 4096
        try check(options, model: .lorsViT)
    }

    /// The bits do not depend on the bucket size, on overlap, or on the progress thread that starts and polls the
    /// all-reduces during backward: the MPI library sums each element over the ranks in the same order whatever the
    /// message length (docs/numerics.md). One bucket for everything, 256-byte buckets, overlap off, hooks-only polling.
    func testBucketSizeOverlapAndProgressThreadDoNotChangeBits() throws {
        XCTAssertTrue(communicator.size == 1 || communicator.allowsBackgroundProgress,
                      "MPI was initialised below MPI_THREAD_SERIALIZED: \(String(describing: MPIEnvironment.providedThreadLevel))")
        var base = RunOptions()
        base.clip = 0.5
        base.bucketCapBytes = 4096
        let reference = try modelTrainRun(communicator, .lorsViT, base)
        for (cap, overlap, background) in [(64 << 20, true, true), (256, true, true), (4096, false, true), (4096, true, false)] {
            var options = base
            options.bucketCapBytes = cap
            options.overlap = overlap
            options.backgroundProgress = background
            let run = try modelTrainRun(communicator, .lorsViT, options)
            let label = "rank \(communicator.rank): bucket cap \(cap) B, overlap \(overlap), progress thread \(background)"
            XCTAssertTrue(bitwiseEqual(reference.firstGradients, run.firstGradients), "\(label): reduced gradients differ")
            XCTAssertTrue(bitwiseEqual(reference.parameters, run.parameters), "\(label): parameters after the steps differ")
        }
        try communicator.barrier()
    }

    func testLORSAdaMixerDecoderEqualsSimulationAndSingleRank() throws {
        var options = RunOptions()
        options.clip = 0.5
        options.bucketCapBytes = 4096
        try check(options, model: .lorsAdaMixer)
    }
}
