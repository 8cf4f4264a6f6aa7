import Foundation
import LorsCheckpoint
import LorsDistributed
import LorsModels
import LorsNative
import LorsOptim
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
    /// A trained model and its AdamW written collectively to `work/step_0000000<step>.h5`.
    private func writeTrainedCheckpoint(step: Int, in work: String) throws -> (path: String, model: VisionTransformer, optimizer: AdamW) {
        let (model, optimizer) = makeTrainedModel()
        let path = work + "/step_0000000\(step).h5"
        let writer = CheckpointWriter(path: path, communicator: MPICommunicator(world), faultInjection: nil)
        writer.addModel(model)
        writer.addOptimizerState(optimizer, model: model)
        try writer.write(metadata: makeMetadata(step: step), optimizer: OptimizerMetadata(describing: optimizer))
        try world.barrier()
        return (path, model, optimizer)
    }

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
        let directory = CheckpointDirectory(workDirectory: work, communicator: MPICommunicator(world))
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
        let reader = try CheckpointReader(path: commit.path, communicator: MPICommunicator(world))
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
        let writer = CheckpointWriter(path: work + "/bad.h5", communicator: MPICommunicator(world), faultInjection: nil)
        writer.add("/model/w", shape: [2 + world.rank], values: [Float](repeating: 1, count: 2 + world.rank))
        XCTAssertThrowsError(try writer.write(metadata: makeMetadata(step: 1))) { error in
            guard case .inconsistentRanks? = error as? CheckpointError else { return XCTFail("rank \(self.world.rank): \(error)") }
        }
        try world.barrier()
    }
    /// A flipped byte fails the load on every rank, naming the dataset, although each rank checksums only its share:
    /// in the last model tensor of the file (checked by the last rank, read by all) and in optimizer state that only
    /// its owner (rank 1) reads. No rank hangs; a healthy owner-only read gives each rank exactly what it owns.
    func testDamagedDatasetFailsTheLoadOnEveryRank() throws {
        let rank = world.rank, size = world.size
        let work = try sharedDirectory()
        defer { if rank == 0 { try? FileManager.default.removeItem(atPath: work) } }
        let (path, model, optimizer) = try writeTrainedCheckpoint(step: 3, in: work)

        // Owner-only reads of the optimizer state (dataset i owned by rank i % size), healthy file.
        let state = optimizer.stateDictionary()
        let reader = try CheckpointReader(path: path, communicator: MPICommunicator(world))
        let optimizerInfos = reader.optimizerDatasets.map(\.info)
        let requests = optimizerInfos.enumerated().map { index, info in (path: info.path, shape: info.shape, owner: Int?(index % size)) }
        let tensors = try reader.readTensors(requests)
        for (index, info) in optimizerInfos.enumerated() {
            if index % size == rank {
                let key = String(info.path.dropFirst("/optimizer/".count))
                let expected = try XCTUnwrap(state[key], "rank \(rank): no state \(key)")
                XCTAssertEqual(tensors[index].map(bits), bits(expected), "rank \(rank) \(info.path)")
            } else {
                XCTAssertNil(tensors[index], "rank \(rank) got \(info.path) it does not own")
            }
        }
        try reader.close()

        // Damage: the last model tensor in the file, and an optimizer tensor that only rank 1 reads.
        let modelInfo = try XCTUnwrap(reader.datasets.last { $0.path.hasPrefix("/model/") && $0.count >= 8 })
        let modelValues = try XCTUnwrap(model.namedParameters().first { CheckpointLayout.modelPath($0.0) == modelInfo.path }?.1)
        let ownedIndex = try XCTUnwrap(optimizerInfos.indices.first { $0 % size == 1 && optimizerInfos[$0].count >= 8 })
        let ownedKey = String(optimizerInfos[ownedIndex].path.dropFirst("/optimizer/".count))
        if rank == 0 {
            try flipByte(in: path, matching: Array(modelValues.toArray()[0..<8]))
            try flipByte(in: path, matching: Array(try XCTUnwrap(state[ownedKey]).toArray()[0..<8]))
        }
        try world.barrier()

        let damaged = try CheckpointReader(path: path, communicator: MPICommunicator(world))
        let (fresh, _) = makeTrainedModel(seed: 99, steps: 0)
        // No early return below: every rank must make every collective call even when an assertion fails.
        let modelError = checkpointError { try damaged.loadModel(into: fresh) }
        if case .checksumMismatch(_, let dataset, _, _)? = modelError {
            XCTAssertEqual(dataset, modelInfo.path, "rank \(rank)")
            XCTAssertTrue("\(modelError!)".contains(modelInfo.path), "rank \(rank): \(modelError!)")
        } else {
            XCTFail("rank \(rank): expected a checksum mismatch naming \(modelInfo.path), got \(String(describing: modelError))")
        }
        let ownedError = checkpointError { _ = try damaged.readTensors(requests) }
        if case .checksumMismatch(_, let dataset, _, _)? = ownedError {
            XCTAssertEqual(dataset, optimizerInfos[ownedIndex].path, "rank \(rank) (only rank 1 read it)")
        } else {
            XCTFail("rank \(rank): expected a checksum mismatch naming \(optimizerInfos[ownedIndex].path), got \(String(describing: ownedError))")
        }
        try damaged.close()
        try world.barrier()
    }
    /// A read that fails on one rank only (an injected `checkpoint-read` fault on rank 1) fails the load and the
    /// verification on every rank: rank 1 with its I/O error naming the dataset, the others with
    /// `failedOnAnotherRank` carrying that message. Nobody hangs in the collectives that follow.
    func testReadErrorOnOneRankFailsEveryRank() throws {
        let rank = world.rank
        let work = try sharedDirectory()
        defer { if rank == 0 { try? FileManager.default.removeItem(atPath: work) } }
        let (path, model, optimizer) = try writeTrainedCheckpoint(step: 2, in: work)

        let fault = try XCTUnwrap(FaultInjection(rule: "checkpoint-read:rank=1:after=2"))
        let cases: [(String, (CheckpointReader) throws -> Void)] = [
            ("loadModel", { reader in try reader.loadModel(into: makeTrainedModel(seed: 3, steps: 0).0) }),
            ("loadOptimizer", { reader in
                let (fresh, freshOptimizer) = makeTrainedModel(seed: 3, steps: 0)
                try reader.loadOptimizer(freshOptimizer, model: fresh)
            }),
            ("verify", { reader in try reader.verify() }),
        ]
        for (name, body) in cases {
            let reader = try CheckpointReader(path: path, communicator: MPICommunicator(world), faultInjection: fault)
            let error = checkpointError { try body(reader) }
            let rankOneMessage = try world.broadcast(rank == 1 ? "\(error.map { "\($0)" } ?? "none")" : "", root: 1)
            switch error {
            case .io(_, _, let detail)? where rank == 1:
                XCTAssertTrue(detail.contains("injected read failure") && detail.contains("dataset '/"), "\(name): \(detail)")
            case .failedOnAnotherRank(_, let detail)? where rank != 1:
                XCTAssertTrue(detail.contains("rank 1") && detail.contains(rankOneMessage), "\(name) rank \(rank): \(detail) / \(rankOneMessage)")
            default:
                XCTFail("\(name) rank \(rank): unexpected \(String(describing: error))")
            }
            try reader.close()
            try world.barrier()
        }
    }
}
