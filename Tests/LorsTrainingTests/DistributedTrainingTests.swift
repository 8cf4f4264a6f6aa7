import Foundation
import XCTest
@testable import LorsCLI
import LorsCheckpoint
import LorsConfig
import LorsDistributed
import LorsTensor
import LorsTestSupport
import LorsTraining

/// Shared by the in-process and the MPI trainer tests.
enum DistributedTrainingSupport {
    /// A tiny LORS ViT on synthetic data with dropout, drop-path, flips, crops and label smoothing:
    /// every random draw is counter-based, so N ranks must reproduce one rank.
    static let yaml = """
        seed: 5
        model:
          vit: {image_size: 8, in_channels: 1, patch_size: 4, num_classes: 4, embed_dim: 16, depth: 2, num_heads: 2,
                drop_rate: 0.1, drop_path_rate: 0.1}
          lors: {enabled: true, rank: 2, attn_groups: [1, 2], ffn_groups: [2, 1], targets: [qkv, proj, fc1, fc2]}
        data:
          dataset: synthetic
          max_train_samples: 96
          max_test_samples: 40
          augmentation: {random_flip: true, random_crop_padding: 1, label_smoothing: 0.1}
        train: {batch_size: 24, epochs: 2, max_steps: 5, log_interval: 1, grad_clip: 0.5}
        optimizer: {type: sgd, lr: 0.05, momentum: 0.9, weight_decay: 0.01, no_decay_on: [norm, bias]}
        lr_schedule: {policy: cosine, warmup_iters: 2}
        eval: {test_batch_size: 16, interval_epochs: 10}
        log: {console: false, tensorboard: false}
        """

    static func temporaryDirectory() throws -> String {
        let d = (NSTemporaryDirectory() as NSString).appendingPathComponent("lors-dp-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
        return d
    }

    static func config(_ directory: String, _ overrides: [String] = [], yaml: String = DistributedTrainingSupport.yaml) throws -> Config {
        let path = (directory as NSString).appendingPathComponent("dp.yaml")
        try yaml.write(toFile: path, atomically: true, encoding: .utf8)
        return try ConfigOptions(config: path, overrides: overrides).load()
    }

    static func parameters(_ run: TrainingRun) -> [String: [Float]] {
        Dictionary(uniqueKeysWithValues: run.trainer.model.namedParameters().map { ($0.0, $0.1.toArray()) })
    }

    /// Trains over `world` (nil: the default local communicator) into a fresh work dir; rank 0's parameters.
    static func train(_ config: Config, in directory: String, world: Communicator? = nil) throws -> [String: [Float]] {
        let work = (directory as NSString).appendingPathComponent("work-\(UUID().uuidString.prefix(6))")
        let run = try world.map { try TrainingRun(config: config, workDirectory: work, world: $0) }
            ?? TrainingRun(config: config, workDirectory: work)
        try run.run()
        return parameters(run)
    }

    /// `lors train --simulate-ranks N`'s code path: N replicas of `TrainingRun` in one process.
    static func simulate(_ size: Int, _ config: Config, in directory: String) throws -> [[String: [Float]]] {
        let work = (directory as NSString).appendingPathComponent("sim-\(UUID().uuidString.prefix(6))")
        return try SimulatedWorld(size: size).run { replica in
            let run = try TrainingRun(config: config, workDirectory: work, world: replica)
            try run.run()
            return parameters(run)
        }
    }

    /// The largest per-tensor max|a − b| / max(max|a|, floor) and its tensor (`floor` > 0 for tensors that stay at
    /// rounding noise, such as a conv bias that the GroupNorm after it cancels).
    static func worst(_ a: [String: [Float]], _ b: [String: [Float]], floor: Float = 0) -> (Float, String) {
        var worst: (Float, String) = (0, "")
        for (name, x) in a {
            guard let y = b[name], y.count == x.count else { return (.infinity, name) }
            var diff: Float = 0, scale: Float = 0
            for i in x.indices { diff = max(diff, abs(x[i] - y[i])); scale = max(scale, abs(x[i])) }
            scale = max(scale, floor)
            let d = scale == 0 ? diff : diff / scale
            if d > worst.0 || d.isNaN { worst = (d, name) }
        }
        return worst
    }

    /// Under mpirun with LORS_EXPECT_RANKS=N: the world (checked to have N ranks), a fresh directory of this rank and
    /// rank 0's directory (the same on every rank, where only rank 0 writes), and a clean-up for both. Skips outside
    /// mpirun.
    static func mpiWorld() throws -> (world: MPICommunicator, mine: String, shared: String, cleanUp: () -> Void) {
        guard let text = ProcessInfo.processInfo.environment["LORS_EXPECT_RANKS"], let expected = Int(text) else {
            throw XCTSkip("multi-rank MPI test: run under mpirun with LORS_EXPECT_RANKS=N (bash cluster/test.sh)")
        }
        let world = try MPICommunicator()
        XCTAssertEqual(world.size, expected)
        let mine = try temporaryDirectory()
        let shared = String(decoding: try world.broadcast(bytes: Array(mine.utf8), root: 0), as: UTF8.self)
        return (world, mine, shared, { try? FileManager.default.removeItem(atPath: world.rank == 0 ? shared : mine) })
    }

    static func bitwiseEqual(_ a: [String: [Float]], _ b: [String: [Float]]) -> Bool {
        a.keys.sorted() == b.keys.sorted() && a.allSatisfy { k, v in v.map(\.bitPattern) == b[k]!.map(\.bitPattern) }
    }
}

/// The training loop over the data-parallel communicator, in one process.
final class DistributedTrainingTests: XCTestCase {
    var directory = ""
    override func setUpWithError() throws { directory = try DistributedTrainingSupport.temporaryDirectory() }
    override func tearDown() { try? FileManager.default.removeItem(atPath: directory) }

    func testSimulatedRanksEqualOneRankThroughTheTrainer() throws {
        let config = try DistributedTrainingSupport.config(directory)
        let reference = try DistributedTrainingSupport.train(config, in: directory)
        for size in [2, 3, 4] {
            let results = try DistributedTrainingSupport.simulate(size, config, in: directory)
            for r in 1..<size { XCTAssertTrue(DistributedTrainingSupport.bitwiseEqual(results[r], results[0]), "world \(size) rank \(r)") }
            let (d, name) = DistributedTrainingSupport.worst(reference, results[0])
            XCTAssertLessThanOrEqual(d, 1e-5, "world \(size): '\(name)' after 5 steps differs by \(d)")
        }
    }

    /// Mixup/CutMix pair samples across the GLOBAL batch with one decision per step, so 1, 2 and 4 ranks and 1 or 2
    /// micro-batches train the same model (to float rounding of the gradient sums; bitwise for the same world size).
    func testMixupAndCutMixDoNotDependOnRanksOrAccumulation() throws {
        let mixing = ["data.augmentation.mixup_alpha=0.8", "data.augmentation.cutmix_alpha=1.0", "data.augmentation.mix_prob=1.0",
                      "data.augmentation.switch_prob=0.5", "train.grad_clip=null"]
        let reference = try DistributedTrainingSupport.train(try DistributedTrainingSupport.config(directory, mixing), in: directory)
        let unmixed = try DistributedTrainingSupport.train(try DistributedTrainingSupport.config(directory, ["train.grad_clip=null"]),
                                                           in: directory)
        XCTAssertGreaterThan(DistributedTrainingSupport.worst(reference, unmixed).0, 1e-3, "mixing changes what is trained")
        for accumulation in [1, 2] {
            let config = try DistributedTrainingSupport.config(directory, mixing + ["train.accumulation_steps=\(accumulation)"])
            for size in [1, 2, 4] {
                let results = try DistributedTrainingSupport.simulate(size, config, in: directory)
                for r in 1..<size { XCTAssertTrue(DistributedTrainingSupport.bitwiseEqual(results[r], results[0]), "world \(size) rank \(r)") }
                if size == 1 && accumulation == 1 {
                    XCTAssertTrue(DistributedTrainingSupport.bitwiseEqual(results[0], reference), "one replica is the plain run, bitwise")
                }
                let (d, name) = DistributedTrainingSupport.worst(reference, results[0])
                XCTAssertLessThanOrEqual(d, 1e-5, "world \(size), accumulation \(accumulation): '\(name)' differs by \(d)")
            }
        }
    }

    func testZeroOneEqualsUnshardedThroughTheTrainer() throws {
        let plain = try DistributedTrainingSupport.simulate(2, try DistributedTrainingSupport.config(directory, ["optimizer.type=adamw"]),
                                                            in: directory)
        let sharded = try DistributedTrainingSupport.simulate(
            2, try DistributedTrainingSupport.config(directory, ["optimizer.type=adamw", "dist.zero1=true"]), in: directory)
        XCTAssertTrue(DistributedTrainingSupport.bitwiseEqual(plain[0], sharded[0]))
    }

    func testSimulateRanksCommandTrainsAndWritesMetrics() throws {
        let path = (directory as NSString).appendingPathComponent("cmd.yaml")
        try DistributedTrainingSupport.yaml.write(toFile: path, atomically: true, encoding: .utf8)
        let work = (directory as NSString).appendingPathComponent("cmd-work")
        var command = try LorsCommand.parseAsRoot(["train", path, "--simulate-ranks", "3", "--work-dir", work, "--threads", "1"])
        try command.run()
        let metrics = try String(contentsOfFile: work + "/metrics.jsonl", encoding: .utf8)
        XCTAssertEqual(metrics.split(separator: "\n").filter { $0.contains("\"type\":\"train\"") }.count, 5, metrics)
    }

    /// ZeRO-1 checkpoints cross between in-process replicas and MPI ranks of the same world size: 3 steps with
    /// `--simulate-ranks 2` resumed by `--np 2` (and the reverse) end with the parameters of 5 uninterrupted steps,
    /// bit for bit, and the simulated run's checkpoint is the one an MPI run writes.
    func testZeroOneCheckpointOfSimulatedRanksResumesUnderMPIAndBack() throws {
        let path = (directory as NSString).appendingPathComponent("zero1.yaml")
        try DistributedTrainingSupport.yaml.write(toFile: path, atomically: true, encoding: .utf8)
        let settings = ["--threads", "1", "--set", "optimizer.type=adamw", "--set", "dist.zero1=true"]
        func train(_ work: String, _ ranks: [String], steps: Int) throws {
            let run = try runLors(["train", path, "--work-dir", work] + ranks + settings + ["--set", "train.max_steps=\(steps)"])
            XCTAssertEqual(run.status, 0, "lors train \(ranks) \(steps) steps: \(run.stderr)\nstdout: \(run.stdout)")
            if ranks.contains("--np") { XCTAssertTrue(run.stderr.contains("mpirun"), run.stderr) }
        }
        func resumedFromStep3(_ work: String) throws -> Bool {
            try String(contentsOfFile: work + "/log.txt", encoding: .utf8).contains("resumed from \(work)/checkpoints/step_00000003.h5: step 3")
        }
        func checkpoint(_ work: String, step: Int) throws -> CheckpointReader {
            try CheckpointReader(path: CheckpointDirectory(workDirectory: work).path(of: CheckpointDirectory.fileName(step: step)))
        }
        func contents(_ reader: CheckpointReader, under prefix: String) throws -> [String: [UInt32]] {
            Dictionary(uniqueKeysWithValues: try reader.datasets.filter { $0.path.hasPrefix(prefix) }.map {
                ($0.path, try reader.read($0.path).map(\.bitPattern))
            })
        }
        let simulated = ["--simulate-ranks", "2"], mpi = ["--np", "2"]
        let reference = directory + "/uninterrupted", forward = directory + "/simulated-then-mpi", backward = directory + "/mpi-then-simulated"
        try train(reference, simulated, steps: 5)
        try train(forward, simulated, steps: 3)
        try train(backward, mpi, steps: 3)

        // The simulated replicas' step-3 file: the datasets, order and values of the MPI ranks' file.
        let simulatedFile = try checkpoint(forward, step: 3), mpiFile = try checkpoint(backward, step: 3)
        XCTAssertEqual(simulatedFile.datasets, mpiFile.datasets)
        XCTAssertTrue(simulatedFile.datasets.contains { $0.path.hasSuffix("/exp_avg_sq") })
        XCTAssertEqual(try contents(simulatedFile, under: "/"), try contents(mpiFile, under: "/"))
        XCTAssertEqual(simulatedFile.metadata.worldSize, 2)
        try simulatedFile.close()
        try mpiFile.close()

        try train(forward, mpi, steps: 5)
        try train(backward, simulated, steps: 5)
        let expected = try checkpoint(reference, step: 5)
        let model = try contents(expected, under: CheckpointLayout.modelGroup + "/"),
            state = try contents(expected, under: CheckpointLayout.optimizerGroup + "/")
        XCTAssertFalse(model.isEmpty)
        for work in [forward, backward] {
            XCTAssertTrue(try resumedFromStep3(work), "\(work) did not resume from step 3")
            let resumed = try checkpoint(work, step: 5)
            XCTAssertEqual(try contents(resumed, under: CheckpointLayout.modelGroup + "/"), model, "\(work): parameters after step 5")
            XCTAssertEqual(try contents(resumed, under: CheckpointLayout.optimizerGroup + "/"), state, "\(work): optimizer state after step 5")
            try resumed.close()
        }
        try expected.close()
    }

    func testWorldSizeThatDoesNotDivideTheBatchIsAnErrorNamingBothNumbers() throws {
        let config = try DistributedTrainingSupport.config(directory, ["train.batch_size=16", "data.max_train_samples=64"])
        XCTAssertThrowsError(try DistributedTrainingSupport.simulate(3, config, in: directory)) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("16") && text.contains("3 rank"), text)
        }
    }

    func testLauncherCommandLineAndSlurmLimit() throws {
        let threads = Threading.resolve(explicit: nil, configured: 0, processesOnNode: 8, environment: [:], cores: 2)
        var launcher = MPILauncher(ranks: 8, threadsPerRank: threads, environment: [:], cores: 2)
        let (args, env) = try launcher.commandLine(worker: "/bin/lors-worker", config: "c.yaml", workDirectory: "w", overrides: ["a=1"])
        XCTAssertTrue(args.contains("--oversubscribe"))
        XCTAssertEqual(Array(args.suffix(11)), ["-np", "8", "/bin/lors-worker", "--config", "c.yaml", "--threads", "1",
                                                "--work-dir", "w", "--set", "a=1"])
        XCTAssertEqual(env["LORS_NUM_THREADS"], "1")
        launcher.ranks = 2
        launcher.cores = 16
        launcher.threadsPerRank = Threading.resolve(explicit: nil, configured: 0, processesOnNode: 2, environment: [:], cores: 16)
        let (args2, env2) = try launcher.commandLine(worker: "w", config: "c", workDirectory: nil, overrides: [])
        XCTAssertFalse(args2.contains("--oversubscribe"))
        XCTAssertEqual(env2["LORS_NUM_THREADS"], "8")
        XCTAssertEqual(Array(args2.suffix(2)), ["--threads", "8"])
        launcher.environment = ["SLURM_JOB_ID": "42", "SLURM_NTASKS": "2"]
        launcher.ranks = 4
        XCTAssertThrowsError(try launcher.commandLine(worker: "w", config: "c", workDirectory: nil, overrides: [])) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("--np 4") && text.contains("SLURM_NTASKS = 2"), text)
        }
    }

    /// Evaluation sharded over 3 ranks (10,000 is not divisible by 3) counts exactly what one rank counts.
    func testEvaluationOnThreeRanksEqualsOneRankOnFashionMNIST() throws {
        let root = "/usr/share/datasets/fashion-mnist"
        guard FileManager.default.fileExists(atPath: root + "/t10k-images-idx3-ubyte.gz") else {
            XCTFail("Fashion-MNIST is not installed at \(root) (bash cluster/setup.sh --deps-only installs dataset-fashion-mnist)")
            return
        }
        let yaml = """
            seed: 1
            model:
              vit: {image_size: 28, in_channels: 1, patch_size: 7, num_classes: 10, embed_dim: 16, depth: 1, num_heads: 2}
              lors: {enabled: true, rank: 2, attn_groups: [1], ffn_groups: [1]}
            data: {dataset: fashion_mnist, root: \(root), max_train_samples: 64}
            train: {batch_size: 12, epochs: 1}
            eval: {test_batch_size: 1000}
            log: {console: false, tensorboard: false}
            """
        let config = try DistributedTrainingSupport.config(directory, yaml: yaml)
        let work = (directory as NSString).appendingPathComponent("eval")
        let one = try TrainingRun(config: config, workDirectory: work).trainer.evaluate()
        let three = try SimulatedWorld(size: 3).run { replica in
            try TrainingRun(config: config, workDirectory: work, world: replica).trainer.evaluate()
        }
        XCTAssertEqual(one.metrics.samples, 10_000)
        for r in three {
            XCTAssertEqual(r.metrics.samples, 10_000)
            XCTAssertEqual(r.metrics["top1"], one.metrics["top1"])
            XCTAssertEqual(r.metrics["top5"], one.metrics["top5"])
        }
        XCTAssertGreaterThan(one.metrics["top1"] ?? 0, 0)
    }
}

/// The trainer under mpirun (`lors-worker`'s code path) against `--simulate-ranks` (same world size)
/// and one rank. Runs only with LORS_EXPECT_RANKS (cluster/test.sh).
final class MPITrainingTests: XCTestCase {
    func testMPITrainerEqualsSimulatedRanksAndOneRank() throws {
        let (world, mine, shared, cleanUp) = try DistributedTrainingSupport.mpiWorld()
        defer { cleanUp() }
        let expected = world.size
        let config = try DistributedTrainingSupport.config(mine, ["train.batch_size=\(expected * 8)", "data.max_train_samples=\(expected * 32)"])
        let mpi = try DistributedTrainingSupport.train(config, in: shared, world: world)
        let simulated = try DistributedTrainingSupport.simulate(expected, config, in: mine)[0]
        let single = try DistributedTrainingSupport.train(config, in: mine)
        for (name, reference) in [("--simulate-ranks \(expected)", simulated), ("one rank", single)] {
            let (d, tensor) = DistributedTrainingSupport.worst(reference, mpi)
            XCTAssertLessThanOrEqual(d, 1e-5, "rank \(world.rank): '\(tensor)' vs \(name) differs by \(d)")
        }
        try world.barrier()
    }
}
