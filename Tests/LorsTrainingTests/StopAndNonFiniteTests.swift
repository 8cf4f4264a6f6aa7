import Foundation
import XCTest
import LorsCLI
import LorsConfig
import LorsData
import LorsNN
import LorsTensor
import LorsTraining

/// A linear classifier that can poison chosen steps: `logits + log(0·logits − 1)` = NaN (op `log`).
final class PoisonableClassifier: Module, ImageClassifier {
    let fc: Linear
    var poisonSteps: Set<Int> = []
    init(inputs: Int, classes: Int) {
        fc = Linear(inputs, classes)
        super.init()
        child("fc", fc)
    }
    func callAsFunction(_ images: Tensor, _ context: ForwardContext) -> Tensor {
        let logits = fc(images.flattened(from: 1))
        guard context.training, poisonSteps.contains(context.step) else { return logits }
        return logits + logits.scaled(by: 0).adding(-1).log()
    }
}

/// Records checkpoint requests (stands in for LorsCheckpoint's CheckpointHook).
final class RecordingCheckpointer: TrainingHook, CheckpointSaving {
    var savedSteps: [Int] = []
    func saveCheckpointNow(_ trainer: Trainer, reason: String) throws { savedSteps.append(trainer.state.step) }
}

/// Calls `body` at chosen moments (test probe).
final class ProbeHook: TrainingHook {
    var afterStep: ((Trainer, StepResult) -> Void)?
    var afterEpochAction: ((Trainer) -> Void)?
    func afterIteration(_ trainer: Trainer, _ result: StepResult) throws { afterStep?(trainer, result) }
    func afterEpoch(_ trainer: Trainer) throws { afterEpochAction?(trainer) }
}

final class StopAndNonFiniteTests: XCTestCase {
    var directory = ""

    override func setUpWithError() throws {
        directory = (NSTemporaryDirectory() as NSString).appendingPathComponent("lors-stop-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        StopSignals.reset()
    }

    override func tearDown() {
        StopSignals.reset()
        Tape.shared.forwardObserver = nil
        Tape.shared.backwardObserver = nil
        try? FileManager.default.removeItem(atPath: directory)
    }

    static let yaml = """
        seed: 5
        model:
          vit: {image_size: 8, in_channels: 1, patch_size: 4, num_classes: 4, embed_dim: 16, depth: 1, num_heads: 2}
        data: {dataset: synthetic, max_train_samples: 64, max_test_samples: 32}
        train: {batch_size: 16, epochs: 3, log_interval: 1}
        optimizer: {lr: 0.01}
        lr_schedule: {policy: constant, warmup_iters: 0}
        eval: {test_batch_size: 8}
        log: {console: false}
        """

    func config(_ overrides: [String] = []) throws -> Config {
        let path = (directory as NSString).appendingPathComponent("tiny.yaml")
        try Self.yaml.write(toFile: path, atomically: true, encoding: .utf8)
        return try ConfigLoader(schema: .lors).load(file: path, overrides: overrides)
    }

    /// A trainer over the tiny synthetic set with `PoisonableClassifier`; hooks: LR, eval, `extra`.
    func makeTrainer(_ overrides: [String] = [], extra: [any TrainingHook] = []) throws -> (Trainer, PoisonableClassifier) {
        let c = RunSettings(try config(overrides))
        let (train, test) = try TrainingSetup.datasets(c)
        let normalization = try TrainingSetup.normalization(c.data, channels: train.channels)
        let model = PoisonableClassifier(inputs: train.channels * train.height * train.width, classes: train.classes)
        model.initializeParameters(seed: 5)
        let settings = TrainingSetup.settings(c)
        let task = ClassificationTask(model: model, trainData: BatchAssembler(dataset: train, normalization: normalization, seed: 5),
                                      testData: BatchAssembler(dataset: test, normalization: normalization, seed: 5))
        let iterations = Trainer.sampler(task, settings: settings).batchesPerEpoch
        let hooks: [any TrainingHook] = [LRScheduleHook(), EvaluationHook(intervalEpochs: 1)] + extra
        let trainer = try Trainer(task: task, optimizer: TrainingSetup.optimizer(c.optimizer, model: model),
                                  schedule: TrainingSetup.schedule(c, iterationsPerEpoch: iterations),
                                  settings: settings, hooks: hooks, log: try .run(console: false))
        return (trainer, model)
    }

    // MARK: - non-finite steps

    func testNonFiniteStepIsSkippedWithoutUpdateAndTrainingContinues() throws {
        var weights: [Int: [Float]] = [:]
        let probe = ProbeHook()
        var skipped: [Int] = []
        let (trainer, model) = try makeTrainer(["train.max_steps=5"], extra: [probe])
        probe.afterStep = { _, result in
            weights[result.step] = model.fc.weight.toArray()
            if result.skipped { skipped.append(result.step) }
        }
        model.poisonSteps = [2, 4]
        try trainer.run()
        XCTAssertEqual(trainer.state.step, 5)
        XCTAssertEqual(skipped, [2, 4])
        XCTAssertEqual(weights[2], weights[1], "a skipped step must not update the parameters")
        XCTAssertNotEqual(weights[3], weights[2])
        XCTAssertTrue(Tensor.allFinite(model.trainableParameters))
        XCTAssertEqual(trainer.consecutiveNonFiniteSteps, 0)
    }

    func testTooManyNonFiniteStepsInARowStopWithClearError() throws {
        let (trainer, model) = try makeTrainer(["train.max_steps=8", "train.max_nonfinite_steps=3"])
        model.poisonSteps = [2, 3, 4, 5]
        XCTAssertThrowsError(try trainer.run()) { error in
            guard case let .nonFinite(step, detail)? = error as? TrainingError else { return XCTFail("\(error)") }
            XCTAssertEqual(step, 4)
            XCTAssertTrue(detail.contains("3 steps in a row") && detail.contains("train.max_nonfinite_steps = 3"), detail)
        }
    }

    func testStopPolicyStopsAtFirstNonFiniteStep() throws {
        let (trainer, model) = try makeTrainer(["train.max_steps=8", "train.nonfinite=stop"])
        model.poisonSteps = [3]
        XCTAssertThrowsError(try trainer.run()) { error in
            guard case let .nonFinite(step, detail)? = error as? TrainingError else { return XCTFail("\(error)") }
            XCTAssertEqual(step, 3)
            XCTAssertTrue(detail.contains("the loss is") && detail.contains("nan"), detail)
        }
    }

    func testAllFiniteDetectsNaNAndInfAnywhere() {
        for count in [1, 7, 8, 9, 33] {
            for position in [0, count - 1, count / 2] {
                for bad in [Float.nan, .infinity, -.infinity] {
                    var values = [Float](repeating: 1, count: count)
                    values[position] = bad
                    XCTAssertFalse(Tensor.allFinite([Tensor(values, shape: [count])]), "\(count) \(position) \(bad)")
                }
            }
            XCTAssertTrue(Tensor.allFinite([Tensor([Float](repeating: 3e38, count: count), shape: [count])]))
        }
    }

    // MARK: - --debug

    func testDebugLocatorNamesTheOpAndParameterOfAnInjectedNaN() throws {
        let locator = NonFiniteLocatorHook()
        let (trainer, model) = try makeTrainer(["train.max_steps=5"], extra: [locator])
        model.poisonSteps = [3]
        XCTAssertThrowsError(try trainer.run()) { error in
            guard case let .nonFinite(step, detail)? = error as? TrainingError else { return XCTFail("\(error)") }
            XCTAssertEqual(step, 3, "--debug stops at the first non-finite step")
            XCTAssertTrue(detail.contains("forward: first non-finite output at op 'log'"), detail)
            XCTAssertTrue(detail.contains("after parameter fc.bias"), detail)
            XCTAssertTrue(detail.contains("first parameter with a non-finite gradient: fc."), detail)
        }
        locator.detach(trainer)
    }

    func testDebugLocatorNamesANonFiniteParameter() throws {
        let locator = NonFiniteLocatorHook()
        let (trainer, model) = try makeTrainer(["train.max_steps=3"], extra: [locator])
        let probe = ProbeHook()
        probe.afterStep = { _, result in
            if result.step == 1 { model.fc.bias!.withMutableHostBuffer { $0[2] = .infinity } }
        }
        trainer.hooks.append(probe)
        XCTAssertThrowsError(try trainer.run()) { error in
            guard case let .nonFinite(step, detail)? = error as? TrainingError else { return XCTFail("\(error)") }
            XCTAssertEqual(step, 2)
            XCTAssertTrue(detail.contains("forward: parameter fc.bias is non-finite"), detail)
        }
        locator.detach(trainer)
    }

    func testDebugFlagThroughTheCommandNamesTheOp() throws {
        // Through `lors train --debug`: a NaN injected into a ViT parameter after parsing is found at its first use.
        let path = (directory as NSString).appendingPathComponent("tiny.yaml")
        try Self.yaml.write(toFile: path, atomically: true, encoding: .utf8)
        let c = try ConfigLoader(schema: .lors).load(file: path, overrides: ["train.max_steps=2"])
        let locator = NonFiniteLocatorHook()
        let run = try TrainingRun(config: c, workDirectory: (directory as NSString).appendingPathComponent("w"),
                                  extraHooks: [locator], stopOnSignals: false)
        let weight = try XCTUnwrap(run.trainer.model.namedParameters().first { $0.0 == "blocks.0.mlp.fc1.weight" }?.1)
        weight.withMutableHostBuffer { $0[0] = .nan }
        XCTAssertThrowsError(try run.run()) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("non-finite values at step 1"), text)
            XCTAssertTrue(text.contains("parameter blocks.0.mlp.fc1.weight is non-finite"), text)
        }
        locator.detach(run.trainer)
    }

    func testCheckRunsOneStepAndReports() throws {
        let path = (directory as NSString).appendingPathComponent("tiny.yaml")
        try Self.yaml.write(toFile: path, atomically: true, encoding: .utf8)
        let c = try ConfigLoader(schema: .lors).load(file: path, overrides: [])
        let run = try TrainingRun(config: c, workDirectory: (directory as NSString).appendingPathComponent("w"), stopOnSignals: false)
        let report = try run.trainer.check(modelType: .vit, buildSeconds: 0.5)
        XCTAssertEqual(report.inputShape, [16, 1, 8, 8])
        XCTAssertEqual(report.outputShape, [16, 4])
        XCTAssertEqual(run.trainer.state.step, 1)
        XCTAssertEqual(report.parameters.total, run.trainer.model.parameterCount)
        XCTAssertTrue(report.text.contains("check: OK") && report.text.contains("rss "), report.text)
        var command = try LorsCommand.parseAsRoot(["train", path, "--work-dir", (directory as NSString).appendingPathComponent("w2"),
                                                   "--check", "--threads", "1"])
        try command.run()
    }

    // MARK: - stop requests

    func testStopRequestAtStepBoundaryCheckpointsAndStops() throws {
        let saver = RecordingCheckpointer()
        var requested: String? = nil
        let stop = StopRequestHook(isRequested: { requested })
        let probe = ProbeHook()
        probe.afterStep = { _, result in if result.step == 2 { requested = "SIGUSR1" } }
        let (trainer, _) = try makeTrainer(["train.max_steps=10"], extra: [probe, saver, stop])
        try trainer.run()
        XCTAssertEqual(trainer.state.step, 2)
        XCTAssertEqual(saver.savedSteps, [2])
        XCTAssertNotNil(trainer.interruption)
        XCTAssertTrue(trainer.interruption!.contains("SIGUSR1"))
        XCTAssertNil(trainer.lastEvaluation, "no evaluation at the end of an interrupted run")
    }

    func testStopRequestDuringEvaluationInterruptsIt() throws {
        let saver = RecordingCheckpointer()
        var requested: String? = nil
        let stop = StopRequestHook(isRequested: { requested })
        let marker = ProbeHook()
        marker.afterEpochAction = { _ in requested = "SIGTERM" } // runs before EvaluationHook.afterEpoch
        let (trainer, _) = try makeTrainer([], extra: [saver, stop])
        trainer.hooks.insert(marker, at: 1)
        try trainer.run()
        XCTAssertEqual(trainer.state.step, trainer.state.iterationsPerEpoch)
        XCTAssertEqual(saver.savedSteps, [trainer.state.iterationsPerEpoch])
        XCTAssertNil(trainer.lastEvaluation)
        XCTAssertTrue(trainer.interruption?.contains("SIGTERM") ?? false)
    }

    func testStopRequestAfterTheFinalStepOnlyInterruptsTheFinalEvaluation() throws {
        let saver = RecordingCheckpointer()
        var evaluations = 0
        let stop = StopRequestHook(isRequested: { "SIGUSR1" })
        let (trainer, _) = try makeTrainer(["train.max_steps=1"], extra: [saver, stop])
        let probe = ProbeHook()
        probe.afterStep = { _, _ in evaluations += 1 }
        trainer.hooks.insert(probe, at: 0)
        try trainer.run()
        XCTAssertEqual(trainer.state.step, 1, "the request after the final step does not skip anything")
        XCTAssertEqual(saver.savedSteps, [1], "the final evaluation is interrupted after a checkpoint of the final step")
        XCTAssertNotNil(trainer.interruption)
        XCTAssertNil(trainer.lastEvaluation)
    }

    func testSignalHandlersRecordTheSignal() throws {
        StopSignals.install()
        XCTAssertNil(StopSignals.pendingSignal)
        raise(SIGUSR1)
        XCTAssertEqual(StopSignals.pendingSignal, SIGUSR1)
        StopSignals.reset()
        raise(SIGTERM) // the first SIGTERM is only a request
        XCTAssertEqual(StopSignals.pendingSignal, SIGTERM)
        StopSignals.reset()
    }
}
