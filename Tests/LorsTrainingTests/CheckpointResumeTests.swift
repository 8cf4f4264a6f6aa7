import Foundation
import XCTest
import LorsCheckpoint
import LorsCLI
import LorsConfig
import LorsModels
import LorsNN
import LorsTensor
import LorsTraining

/// Checkpoints written by the loop, exact resume, the CLI's `--resume`, `eval`, `inspect`, `export`, and a process
/// killed in the middle of a checkpoint write. World size 1 (the in-process communicator); the same helpers take a
/// communicator so the data-parallel variant can run them under 2 ranks.
final class CheckpointResumeTests: XCTestCase {
    var directory = ""

    override func setUpWithError() throws {
        directory = (NSTemporaryDirectory() as NSString).appendingPathComponent("lors-resume-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    override func tearDown() { try? FileManager.default.removeItem(atPath: directory) }

    /// 4 steps per epoch, 12 in the schedule; dropout, drop-path and augmentation on, so the resume must restore the
    /// counters exactly.
    static let yaml = EndToEndTests.tinyYAML

    static let lorsOverrides = ["model.lors.enabled=true", "model.lors.rank=2", "model.lors.attn_groups=[1, 2]",
                                "model.lors.ffn_groups=[2, 1]"]

    private func config(_ overrides: [String]) throws -> Config {
        try ConfigLoader(schema: .lors).load(yaml: Self.yaml, overrides: overrides)
    }

    private func configFile(_ text: String = CheckpointResumeTests.yaml) throws -> String {
        let path = (directory as NSString).appendingPathComponent("tiny.yaml")
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// What `lors train` does, in process: returns the run (model, optimizer, state) and the resume outcome.
    @discardableResult
    private func train(_ workDir: String, _ overrides: [String], resume: ResumeMode = .auto,
                       parallel: DataParallel? = nil) throws -> (TrainingRun, ResumeOutcome, CheckpointHook) {
        let c = try config(overrides)
        let hook = CheckpointHook(RunSettings(c).checkpoint, config: c, workDirectory: workDir)
        let run = try TrainingRun(config: c, workDirectory: workDir, parallel: parallel, extraHooks: [hook])
        let outcome = try run.resume(resume, checkpoints: hook)
        if case .alreadyFinished = outcome { return (run, outcome, hook) }
        try run.run()
        return (run, outcome, hook)
    }

    private func parameterBits(_ run: TrainingRun) -> [String: [UInt32]] {
        Dictionary(uniqueKeysWithValues: run.trainer.model.namedParameters().map { ($0.0, $0.1.toArray().map(\.bitPattern)) })
    }

    private func optimizerBits(_ run: TrainingRun) -> [String: [UInt32]] {
        run.trainer.optimizer.stateDictionary().mapValues { $0.toArray().map(\.bitPattern) }
    }

    private func assertBitwiseEqual(_ a: [String: [UInt32]], _ b: [String: [UInt32]], _ what: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(Set(a.keys), Set(b.keys), what, file: file, line: line)
        for key in a.keys.sorted() where a[key] != b[key] {
            XCTFail("\(what): '\(key)' differs", file: file, line: line)
        }
    }

    // MARK: - Exact resume

    func testFiveStepsPlusResumeMidEpochEqualsTenStraightBitwise() throws {
        for (label, extra) in [("vit", [String]()), ("lors", Self.lorsOverrides)] {
            let (straight, outcome, _) = try train(directory + "/straight-\(label)", extra + ["train.max_steps=10"], resume: .none)
            XCTAssertEqual(outcome, .fresh)
            XCTAssertEqual(straight.trainer.state.step, 10)

            let split = directory + "/split-\(label)"
            let (first, _, firstHook) = try train(split, extra + ["train.max_steps=5"])
            XCTAssertEqual(first.trainer.state.step, 5)
            XCTAssertEqual(firstHook.commits.map(\.path).last.map { ($0 as NSString).lastPathComponent }, "step_00000005.h5")
            let reader = try CheckpointReader(path: split + "/checkpoints/step_00000005.h5")
            XCTAssertEqual(reader.metadata.step, 5)
            XCTAssertEqual(reader.metadata.epoch, 1, "step 5 of 4-step epochs: the next step is in epoch 1 (0-based)")
            XCTAssertEqual(reader.metadata.batchInEpoch, 1, "mid-epoch")
            XCTAssertEqual(reader.metadata.worldSize, 1)
            XCTAssertEqual(reader.metadata.seed, 3)
            XCTAssertEqual(reader.metadata.extra["iterations_per_epoch"], "4")
            XCTAssertEqual(reader.metadata.extra["optimizer_step_count"], "5")
            XCTAssertEqual(reader.optimizerMetadata?.type, "adamw")
            XCTAssertTrue(reader.metadata.config.contains("max_steps: 5"), reader.metadata.config)
            try reader.close()

            // Raising max_steps and resuming is allowed.
            let (second, resumed, _) = try train(split, extra + ["train.max_steps=10"])
            XCTAssertEqual(resumed, .resumed(path: split + "/checkpoints/step_00000005.h5", step: 5))
            XCTAssertEqual(second.trainer.state.step, 10)
            assertBitwiseEqual(parameterBits(straight), parameterBits(second), "\(label) parameters")
            assertBitwiseEqual(optimizerBits(straight), optimizerBits(second), "\(label) optimizer state")

            // The metrics continue: steps 1...5 then 6...10.
            let text = try String(contentsOfFile: split + "/metrics.jsonl", encoding: .utf8)
            let steps = text.split(separator: "\n").compactMap { line -> Int? in
                guard let o = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], o["type"] as? String == "train" else { return nil }
                return o["step"] as? Int
            }
            XCTAssertEqual(steps, Array(1...10))
        }
    }

    func testIntervalKeepLastBestAndAlreadyFinishedRun() throws {
        let work = directory + "/interval"
        let (run, _, hook) = try train(work, ["train.max_steps=10", "checkpoint.interval_steps=2", "checkpoint.keep_last=2"])
        XCTAssertEqual(hook.commits.map { ($0.path as NSString).lastPathComponent },
                       (1...5).map { CheckpointDirectory.fileName(step: 2 * $0) })
        let names = CheckpointDirectory(workDirectory: work).checkpointFiles().map(\.name)
        let best = try XCTUnwrap(CheckpointDirectory(workDirectory: work).bestName())
        // Epoch ends at steps 4 and 8 carry an evaluation; the final step 10 too.
        let evaluated = hook.commits.filter { (try? CheckpointReader(path: $0.path))?.metadata.evalMetric != nil }
        XCTAssertTrue(names.contains("step_00000010.h5") && names.contains("step_00000008.h5"), "\(names)")
        XCTAssertTrue(names.contains(best), "rotation keeps best '\(best)': \(names)")
        XCTAssertLessThanOrEqual(names.count, 3)
        XCTAssertEqual(Set(evaluated.map { ($0.path as NSString).lastPathComponent }).intersection(names).isEmpty, false)
        XCTAssertEqual(CheckpointDirectory(workDirectory: work).latestName(), "step_00000010.h5")
        XCTAssertEqual(run.trainer.lastEvaluation?.step, 10)

        // Resuming a run that already reached train.max_steps says so and does nothing; through the CLI it exits 0.
        let (again, outcome, _) = try train(work, ["train.max_steps=10"])
        XCTAssertEqual(outcome, .alreadyFinished(path: work + "/checkpoints/step_00000010.h5", step: 10, finalStep: 10))
        XCTAssertEqual(again.trainer.state.step, 10)
        let file = try configFile()
        var command = try LorsCommand.parseAsRoot(["train", file, "--work-dir", work, "--set", "train.max_steps=10", "--threads", "1"])
        XCTAssertNoThrow(try command.run())
        let log = try String(contentsOfFile: work + "/log.txt", encoding: .utf8)
        XCTAssertTrue(log.contains("already reached its final step 10"), log)
    }

    func testConfigAndShapeMismatchesNameTheKeysAndDatasets() throws {
        let work = directory + "/mismatch"
        try train(work, Self.lorsOverrides + ["train.max_steps=2"])
        XCTAssertThrowsError(try train(work, Self.lorsOverrides + ["train.max_steps=4", "optimizer.lr=0.5"])) { error in
            XCTAssertTrue("\(error)".contains("optimizer.lr: checkpoint 0.003, now 0.5"), "\(error)")
        }
        var other = Self.lorsOverrides
        other[1] = "model.lors.rank=3"
        XCTAssertThrowsError(try train(work, other + ["train.max_steps=4"])) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("/model/blocks.0.attn.qkv.A") && text.contains("[3, 16]") && text.contains("[2, 16]"), text)
            XCTAssertTrue(text.contains("model.lors.rank: checkpoint 2, now 3"), text)
        }
        // Through the CLI: a plain error, exit code 1.
        let file = try configFile()
        var command = try LorsCommand.parseAsRoot(["train", file, "--work-dir", work, "--threads", "1"] + (other + ["train.max_steps=4"]).flatMap { ["--set", $0] })
        XCTAssertThrowsError(try command.run()) { error in
            XCTAssertEqual(LorsCommand.exitCode(for: error).rawValue, 1)
            XCTAssertTrue(LorsCommand.message(for: error).contains("/model/blocks.0.attn.qkv.A"), LorsCommand.message(for: error))
        }
        // --resume with a missing file or --resume none.
        XCTAssertThrowsError(try train(work, Self.lorsOverrides + ["train.max_steps=4"], resume: .path(work + "/nope.h5"))) { error in
            XCTAssertTrue("\(error)".contains("nope.h5"), "\(error)")
        }
        let (fresh, outcome, _) = try train(directory + "/other", Self.lorsOverrides + ["train.max_steps=1"], resume: .none)
        XCTAssertEqual(outcome, .fresh)
        XCTAssertEqual(fresh.trainer.state.step, 1)
        // An explicit path from another work dir.
        let (explicit, explicitOutcome, _) = try train(directory + "/explicit", Self.lorsOverrides + ["train.max_steps=3"],
                                                       resume: .path(work + "/checkpoints/step_00000002.h5"))
        XCTAssertEqual(explicitOutcome, .resumed(path: work + "/checkpoints/step_00000002.h5", step: 2))
        XCTAssertEqual(explicit.trainer.state.step, 3)
    }

    // MARK: - CLI: damaged latest, inspect, eval, export

    func testDamagedLatestFallsBackThroughTheCLIAndStaysExact() throws {
        let file = try configFile()
        let work = directory + "/cli"
        func cli(_ steps: Int, _ extra: [String] = []) throws {
            var command = try LorsCommand.parseAsRoot(["train", file, "--work-dir", work, "--threads", "1", "--set", "train.max_steps=\(steps)",
                                                       "--set", "checkpoint.interval_steps=2"] + extra)
            try command.run()
        }
        try cli(6)
        let checkpoints = CheckpointDirectory(workDirectory: work)
        XCTAssertEqual(checkpoints.latestName(), "step_00000006.h5")
        let latest = checkpoints.path(of: "step_00000006.h5")
        let size = try FileManager.default.attributesOfItem(atPath: latest)[.size] as! Int
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: latest))
        try handle.truncate(atOffset: UInt64(size / 2))
        try handle.close()

        // inspect: damaged → exit 1; an intact one → 0.
        var inspect = try LorsCommand.parseAsRoot(["inspect", latest])
        XCTAssertThrowsError(try inspect.run()) { XCTAssertEqual(LorsCommand.exitCode(for: $0).rawValue, 1, "\($0)") }
        var inspectGood = try LorsCommand.parseAsRoot(["inspect", checkpoints.path(of: "step_00000004.h5"), "--json"])
        XCTAssertNoThrow(try inspectGood.run())

        try cli(8)
        let log = try String(contentsOfFile: work + "/log.txt", encoding: .utf8)
        XCTAssertTrue(log.contains("latest checkpoint 'step_00000006.h5' is damaged"), log)
        XCTAssertTrue(log.contains("resumed from \(checkpoints.path(of: "step_00000004.h5")): step 4"), log)
        XCTAssertEqual(checkpoints.latestName(), "step_00000008.h5")

        // The fallback run equals a straight 8-step run.
        let (straight, _, _) = try train(directory + "/straight8", ["train.max_steps=8"], resume: .none)
        let reader = try CheckpointReader(path: checkpoints.path(of: "step_00000008.h5"))
        for (name, tensor) in straight.trainer.model.namedParameters() {
            XCTAssertEqual(try reader.read(CheckpointLayout.modelPath(name)).map(\.bitPattern), tensor.toArray().map(\.bitPattern), name)
        }
    }

    func testInspectExitCodes() throws {
        let work = directory + "/inspect"
        try train(work, ["train.max_steps=1"])
        let path = CheckpointDirectory(workDirectory: work).path(of: "step_00000001.h5")
        var good = try LorsCommand.parseAsRoot(["inspect", path])
        XCTAssertNoThrow(try good.run())
        // One flipped byte inside /model/head.bias... use the biggest tensor to be sure to hit its bytes.
        let reader = try CheckpointReader(path: path)
        let values = try reader.read("/model/pos_embed")
        try reader.close()
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        let pattern = values.withUnsafeBytes { [UInt8]($0) }
        let start = try XCTUnwrap((0...(bytes.count - pattern.count)).first { bytes[$0..<($0 + pattern.count)].elementsEqual(pattern) })
        bytes[start + 5] ^= 0x40
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        var damaged = try LorsCommand.parseAsRoot(["inspect", path, "--json"])
        XCTAssertThrowsError(try damaged.run()) { XCTAssertEqual(LorsCommand.exitCode(for: $0).rawValue, 1) }
        let report = try CheckpointInspector.inspect(path: path, throwIfDamaged: false)
        XCTAssertEqual(report.problems.count, 1)
        XCTAssertTrue(report.problems[0].contains("/model/pos_embed"), report.problems[0])
        // Not a checkpoint / missing file: a plain error, exit 1.
        try Data("hello".utf8).write(to: URL(fileURLWithPath: work + "/junk.h5"))
        for bad in [work + "/junk.h5", work + "/missing.h5"] {
            var command = try LorsCommand.parseAsRoot(["inspect", bad])
            XCTAssertThrowsError(try command.run()) { error in
                XCTAssertEqual(LorsCommand.exitCode(for: error).rawValue, 1)
                XCTAssertTrue(LorsCommand.message(for: error).contains(bad), LorsCommand.message(for: error))
            }
        }
    }

    func testEvalCommandMatchesTheTrainersEvaluation() throws {
        let work = directory + "/eval"
        let (run, _, _) = try train(work, Self.lorsOverrides + ["train.max_steps=4"])
        let expected = try XCTUnwrap(run.trainer.lastEvaluation)
        let path = CheckpointDirectory(workDirectory: work).path(of: "step_00000004.h5")
        let c = try config(Self.lorsOverrides)
        let reader = try CheckpointReader(path: path)
        let settings = RunSettings(c)
        let result = try CheckpointTools.evaluate(checkpoint: reader, settings: settings)
        XCTAssertEqual(result, expected.metrics, "the same evaluation, bit for bit")
        // A config that does not match the checkpoint names the dataset.
        XCTAssertThrowsError(try CheckpointTools.evaluate(checkpoint: reader, settings: RunSettings(try config([])))) { error in
            XCTAssertTrue("\(error)".contains("/model/"), "\(error)")
        }
        let file = try configFile()
        var command = try LorsCommand.parseAsRoot(["eval", file, "--checkpoint", path, "--json"] + Self.lorsOverrides.flatMap { ["--set", $0] })
        XCTAssertNoThrow(try command.run())
    }

    func testExportMergedLORSReproducesTheLogitsWithADenseViT() throws {
        let work = directory + "/export"
        try train(work, Self.lorsOverrides + ["train.max_steps=4"])
        let path = CheckpointDirectory(workDirectory: work).path(of: "step_00000004.h5")
        for format in ["safetensors", "hdf5"] {
            let out = work + "/model." + format
            var command = try LorsCommand.parseAsRoot(["export", path, "--out", out, "--merge-lors", "--format", format,
                                                       "--reference-logits", work + "/reference.safetensors"])
            try command.run()
        }
        let exported = try CheckpointExport.readSafetensors(path: work + "/model.safetensors")
        XCTAssertEqual(exported.metadata["embed_dim"], "16")
        let names = exported.tensors.map(\.name)
        XCTAssertTrue(names.contains("blocks.1.mlp.fc2.weight") && names.contains("blocks.0.attn.qkv.bias"), "\(names)")
        XCTAssertFalse(names.contains { $0.hasPrefix("lors.") || $0.hasSuffix(".A") || $0.hasSuffix(".B") }, "\(names)")

        // A dense ViT of the same shape, loaded with the merged weights, gives our logits.
        let dense = ModelBuilder.vit(RunSettings(try config([])).model)
        let byName = Dictionary(uniqueKeysWithValues: exported.tensors.map { ($0.name, $0) })
        XCTAssertEqual(Set(dense.namedParameters().map(\.0)), Set(byName.keys))
        for (name, tensor) in dense.namedParameters() {
            let entry = try XCTUnwrap(byName[name], name)
            XCTAssertEqual(entry.shape, tensor.shape, name)
            tensor.assign(Tensor(entry.values, shape: entry.shape))
        }
        let reference = try CheckpointExport.readSafetensors(path: work + "/reference.safetensors")
        let input = try XCTUnwrap(reference.tensors.first { $0.name == "input" })
        let logits = try XCTUnwrap(reference.tensors.first { $0.name == "logits" })
        let ours = withoutGradients { dense(Tensor(input.values, shape: input.shape), .inference).toArray() }
        for (a, b) in zip(ours, logits.values) { XCTAssertEqual(a, b, accuracy: 1e-4 * max(1, abs(b))) }

        // The committed Python check (h5py + torch; cluster/test.sh installs them).
        let probe = try? runProcess(["python3", "-c", "import h5py, numpy, torch"])
        guard probe?.status == 0 else {
            let reason = probe.map { $0.output.split(separator: "\n").last.map(String.init) ?? "exit status \($0.status)" }
            XCTFail("python3 with h5py, numpy and torch is required for check_export.py (python3 -m pip install h5py numpy torch): "
                + (reason ?? "python3 did not start"))
            return
        }
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("scripts/check_export.py").path
        let check = try runProcess(["python3", script, "--checkpoint", path, "--safetensors", work + "/model.safetensors",
                                    "--reference", work + "/reference.safetensors"])
        XCTAssertEqual(check.status, 0, check.output)
        XCTAssertTrue(check.output.contains("logits match"), check.output)
    }

    // MARK: - Fault injection through the real training path

    func testProcessKilledDuringACheckpointWriteOfTrainingResumes() throws {
        let executable = URL(fileURLWithPath: try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe"))
            .deletingLastPathComponent().appendingPathComponent("lors").path
        guard FileManager.default.isExecutableFile(atPath: executable) else {
            XCTFail("no lors executable beside the tests at \(executable) (swift build --build-tests builds it)")
            return
        }
        let file = try configFile()
        let work = directory + "/fault"
        let checkpoints = CheckpointDirectory(workDirectory: work)
        try train(work, ["train.max_steps=4", "checkpoint.interval_steps=2"])
        XCTAssertEqual(checkpoints.latestName(), "step_00000004.h5")
        let latestBefore = try Data(contentsOf: URL(fileURLWithPath: checkpoints.path(of: "latest")))
        let previous = try Data(contentsOf: URL(fileURLWithPath: checkpoints.path(of: "step_00000004.h5")))

        // The child resumes at 4, trains 5 and 6, and is SIGKILLed after writing 3 datasets of step 6's checkpoint.
        let child = try runProcess([executable, "train", file, "--work-dir", work, "--threads", "1", "--set", "train.max_steps=8",
                                    "--set", "checkpoint.interval_steps=2"],
                                   environment: [FaultInjection.environmentVariable: "checkpoint-write:after=3"])
        XCTAssertEqual(child.reason, .uncaughtSignal, child.output)
        XCTAssertEqual(child.status, SIGKILL, child.output)
        XCTAssertTrue(FileManager.default.fileExists(atPath: checkpoints.path(of: "step_00000006.h5.tmp")))
        XCTAssertFalse(FileManager.default.fileExists(atPath: checkpoints.path(of: "step_00000006.h5")))
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: checkpoints.path(of: "latest"))), latestBefore)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: checkpoints.path(of: "step_00000004.h5"))), previous)

        let (resumed, outcome, _) = try train(work, ["train.max_steps=8", "checkpoint.interval_steps=2"])
        XCTAssertEqual(outcome, .resumed(path: checkpoints.path(of: "step_00000004.h5"), step: 4))
        XCTAssertEqual(checkpoints.latestName(), "step_00000008.h5")
        XCTAssertFalse(FileManager.default.fileExists(atPath: checkpoints.path(of: "step_00000006.h5.tmp")), "rotation removes stale temporaries")
        let (straight, _, _) = try train(directory + "/straight", ["train.max_steps=8"], resume: .none)
        assertBitwiseEqual(parameterBits(straight), parameterBits(resumed), "parameters after the crash and resume")
    }
}

func runProcess(_ arguments: [String], environment: [String: String] = [:]) throws -> (status: Int32, reason: Process.TerminationReason, output: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: arguments[0].hasPrefix("/") ? arguments[0] : "/usr/bin/env")
    process.arguments = arguments[0].hasPrefix("/") ? Array(arguments.dropFirst()) : arguments
    process.environment = ProcessInfo.processInfo.environment.merging(environment) { _, new in new }
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = pipe
    try process.run()
    let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    process.waitUntilExit()
    return (process.terminationStatus, process.terminationReason, output)
}
