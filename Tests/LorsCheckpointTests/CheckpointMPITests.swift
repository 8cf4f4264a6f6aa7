import Foundation
import LorsCheckpoint
import LorsNative
import LorsTensor
import XCTest

/// Parallel checkpoint writing under `mpirun` (`bash cluster/test.sh` runs it with 2 ranks):
///
///     LORS_EXPECT_RANKS=2 mpirun --allow-run-as-root --oversubscribe -np 2 \
///         .build/debug/lorsPackageTests.xctest LorsCheckpointTests.CheckpointMPITests
///
/// Skipped when `LORS_EXPECT_RANKS` is unset; fails when the world has another size. Every rank runs every
/// collective even after a failed assertion.
final class CheckpointMPITests: XCTestCase {
    private var world: MPIComm!

    override func setUpWithError() throws {
        guard let text = ProcessInfo.processInfo.environment["LORS_EXPECT_RANKS"] else {
            throw XCTSkip("multi-rank checkpoint test: LORS_EXPECT_RANKS=2 mpirun -np 2 ... LorsCheckpointTests.CheckpointMPITests")
        }
        let expected = try XCTUnwrap(Int(text), "LORS_EXPECT_RANKS must be an integer, got '\(text)'")
        world = try MPIEnvironment.initialize()
        guard world.size == expected else {
            throw NSError(domain: "CheckpointMPITests", code: 1, userInfo: [NSLocalizedDescriptionKey:
                "LORS_EXPECT_RANKS=\(expected) but MPI_COMM_WORLD has \(world.size) rank(s)"])
        }
        XCTAssertGreaterThan(world.size, 1)
    }

    /// Rank 0 makes a directory and every rank gets its path.
    private func sharedDirectory() throws -> String {
        let path = world.rank == 0 ? try temporaryDirectory("mpi") : ""
        return try world.broadcast(path)
    }

    private func owned(_ count: Int, rank: Int, size: Int) -> Range<Int> {
        (count * rank / size)..<(count * (rank + 1) / size)
    }

    func testParallelZeROWriteLoadsOnAnyRankCount() throws {
        let rank = world.rank, size = world.size
        let work = try sharedDirectory()
        defer { if rank == 0 { try? FileManager.default.removeItem(atPath: work) } }
        // Every rank holds the same model and (for the check) the same full optimizer state; each writes only the
        // flat ranges of optimizer state it owns, as ZeRO-1 would.
        let (model, optimizer) = makeTrainedModel()
        let state = optimizer.stateDictionary()
        let directory = CheckpointDirectory(workDirectory: work, comm: world)
        var meta = makeMetadata(step: 4)
        meta.worldSize = size
        let commit = try directory.save(metadata: meta, optimizer: OptimizerMetadata(describing: optimizer), faultInjection: nil) { writer in
            writer.addModel(model)
            for key in state.keys.sorted() {
                let tensor = state[key]!
                guard let slash = key.lastIndex(of: "/") else {
                    writer.add(CheckpointLayout.optimizerPath(parameter: nil, state: key), tensor: tensor)
                    continue
                }
                let range = owned(tensor.count, rank: rank, size: size)
                writer.addOptimizerStateShard(parameter: String(key[..<slash]), state: String(key[key.index(after: slash)...]),
                                              shape: tensor.shape, range: range, values: Array(tensor.toArray()[range]))
            }
        }
        XCTAssertEqual(try world.broadcast(commit.path), commit.path, "every rank reports the same path")

        // Collective reading: model whole on every rank, optimizer state re-partitioned (reversed ownership).
        let reader = try CheckpointReader(path: commit.path, comm: world)
        XCTAssertEqual(reader.metadata.worldSize, size)
        let (fresh, _) = makeTrainedModel(seed: 123, steps: 0)
        try reader.loadModel(into: fresh)
        for ((name, a), (_, b)) in zip(model.namedParameters(), fresh.namedParameters()) { XCTAssertEqual(bits(a), bits(b), "rank \(rank) \(name)") }
        for key in state.keys.sorted() where key.contains("/exp_avg") {
            let tensor = state[key]!
            let range = owned(tensor.count, rank: size - 1 - rank, size: size)
            let values = try reader.read("/optimizer/" + key, range: range)
            XCTAssertEqual(values.map(\.bitPattern), Array(tensor.toArray()[range]).map(\.bitPattern), "rank \(rank) \(key)")
        }
        try reader.verify()
        try reader.close()

        // The same file loads serially (M = 1) with full checksum verification, on every rank independently.
        try world.barrier()
        let serial = try CheckpointReader(path: commit.path)
        let (single, singleOptimizer) = makeTrainedModel(seed: 5, steps: 0)
        try serial.loadModel(into: single)
        try serial.loadOptimizer(singleOptimizer, model: single)
        for (key, tensor) in state { XCTAssertEqual(bits(singleOptimizer.stateDictionary()[key]!), bits(tensor), "rank \(rank) \(key)") }
        try serial.close()
        XCTAssertEqual(directory.latestName(), "step_00000004.h5")
        try world.barrier()

        // Auto-resume resolution is collective and agrees on every rank.
        let choice = try directory.resolve(.auto)
        XCTAssertEqual(choice?.step, 4)
        try world.barrier()
    }

    func testRanksDescribingDifferentDatasetsFailTogether() throws {
        let work = try sharedDirectory()
        defer { if world.rank == 0 { try? FileManager.default.removeItem(atPath: work) } }
        let writer = CheckpointWriter(path: work + "/bad.h5", comm: world, faultInjection: nil)
        writer.add("/model/w", shape: [2 + world.rank], values: [Float](repeating: 1, count: 2 + world.rank))
        XCTAssertThrowsError(try writer.write(metadata: makeMetadata(step: 1))) { error in
            guard case .inconsistentRanks? = error as? CheckpointError else { return XCTFail("rank \(self.world.rank): \(error)") }
        }
        try world.barrier()
    }
}
