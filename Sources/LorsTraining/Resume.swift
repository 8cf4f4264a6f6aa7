import Foundation
import Logging
import LorsCheckpoint
import LorsConfig
import LorsDistributed
import LorsNN

/// What `TrainingRun.resume` did.
public enum ResumeOutcome: Equatable, Sendable {
    /// No checkpoint (or `--resume none`): the run starts at step 0.
    case fresh
    /// Model, optimizer and step restored from `path`; the run continues after `step`.
    case resumed(path: String, step: Int)
    /// The checkpoint already reached the run's final step (`train.max_steps` or the end of the schedule): nothing to do.
    case alreadyFinished(path: String, step: Int, finalStep: Int)
}

/// A checkpoint that cannot continue this run.
public enum ResumeError: Error, CustomStringConvertible, Equatable {
    /// The stored config differs in keys that must not change; `loadProblem` is the first dataset that did not fit
    /// the model (missing or another shape), if any.
    case incompatible(file: String, differences: [ConfigDifference], loadProblem: String?)

    public var description: String {
        switch self {
        case let .incompatible(file, differences, loadProblem):
            var parts: [String] = []
            if let loadProblem { parts.append(loadProblem) }
            if !differences.isEmpty {
                parts.append("the config differs from the checkpoint's in \(differences.count) key(s): "
                    + differences.map(\.description).joined(separator: "; "))
            }
            return "cannot resume from '\(file)': " + parts.joined(separator: "; ")
        }
    }
}

/// Config keys that may differ between a checkpoint and the run resuming from it: stop condition, cadence of
/// checkpoints, evaluation and logging, threads, and where the data lives.
public enum ResumePolicy {
    /// (Retired keys too: a checkpoint of an older version may store a key this version no longer has.)
    public static let allowedConfigChanges: Set<String> = RunSettings.keysAllowedToChangeOnResume.union(ConfigSchema.lors.retiredKeys)
}

extension TrainingRun {
    /// Restores the model, optimizer state and step from the checkpoint `mode` selects (collective when the hook's
    /// state has a communicator). Call before `run()`.
    ///
    /// `auto`: the work dir's `latest`, a damaged one falling back to the newest older complete checkpoint (with a
    /// warning), a fresh start when there is none. `path(P)`: P, which must verify. `none`: fresh.
    ///
    /// Errors: a damaged explicit checkpoint (`CheckpointError` naming the dataset), a model that does not fit (a
    /// dataset missing or of another shape, e.g. another LORS rank) or a config that differs in keys other than
    /// `allowedConfigChanges` (`ResumeError.incompatible`, naming the dataset and the keys).
    ///
    /// The checkpoint directory's warnings (a damaged `latest`, the checkpoint fallen back to) go to the run's log at
    /// level warning; an error is logged at level error before it is thrown.
    @discardableResult
    public func resume(_ mode: ResumeMode, checkpoints: CheckpointHook,
                       allowedConfigChanges: Set<String> = ResumePolicy.allowedConfigChanges) throws -> ResumeOutcome {
        try loggingErrors { try resumeFrom(mode, checkpoints: checkpoints, allowedConfigChanges: allowedConfigChanges) }
    }

    private func resumeFrom(_ mode: ResumeMode, checkpoints: CheckpointHook, allowedConfigChanges: Set<String>) throws -> ResumeOutcome {
        let log = trainer.log
        checkpoints.directory.warn = { warning in log.warning("\(warning)") }
        guard let choice = try checkpoints.directory.resolve(mode) else {
            if mode == .auto { trainer.log.info("no checkpoint in \(checkpoints.directory.directory): starting at step 0") }
            return .fresh
        }
        // MPI ranks open the file together; of in-process replicas rank 0 alone, which sends the others its `/meta`.
        let directory = checkpoints.directory
        let reader: CheckpointReader?
        if directory.communicator.sharesFileAccess {
            reader = try CheckpointReader(path: choice.path, communicator: directory.fileCommunicator)
        } else {
            var opened: CheckpointReader?
            try directory.communicator.onRoot(file: choice.path) { opened = try CheckpointReader(path: choice.path) }
            reader = opened
        }
        defer { try? reader?.close() }
        let meta = try ResumePoint.shared(reader?.metadata, communicator: directory.communicator, file: choice.path)
        let differences = ConfigComparison.differences(stored: meta.config, current: checkpoints.configYAML,
                                                       allowedToChange: allowedConfigChanges)
        do {
            try checkpoints.state.load(from: reader, model: trainer.model, optimizer: trainer.optimizer)
        } catch let error as CheckpointError {
            switch error {
            case .shapeMismatch, .missingDataset, .unexpectedDatasets, .optimizerState:
                throw ResumeError.incompatible(file: choice.path, differences: differences, loadProblem: "\(error)")
            default:
                throw error
            }
        }
        guard differences.isEmpty else {
            throw ResumeError.incompatible(file: choice.path, differences: differences, loadProblem: nil)
        }
        trainer.state.step = meta.step
        trainer.state.learningRate = meta.currentLearningRate
        checkpoints.lastSavedStep = meta.step
        if meta.step >= trainer.finalStep {
            let message = "checkpoint \(choice.path) is at step \(meta.step): the run already reached its final step "
                + "\(trainer.finalStep) (train.max_steps \(trainer.settings.maxSteps.map(String.init) ?? "unset"), "
                + "schedule \(trainer.totalSteps) steps); nothing to do"
            trainer.log.info("\(message)")
            return .alreadyFinished(path: choice.path, step: meta.step, finalStep: trainer.finalStep)
        }
        let message = "resumed from \(choice.path): step \(meta.step) (epoch \(meta.epoch + 1), iteration \(meta.batchInEpoch) "
            + "of \(trainer.state.iterationsPerEpoch)), written by \(meta.worldSize) rank(s)"
        trainer.log.info("\(message)")
        return .resumed(path: choice.path, step: meta.step)
    }
}

/// What a resume needs from `/meta`, on every rank (in-process replicas: sent by rank 0, the only one that opens the
/// file).
struct ResumePoint {
    var step: Int
    var epoch: Int
    var batchInEpoch: Int
    var worldSize: Int
    var currentLearningRate: Double
    var config: String

    init(_ metadata: CheckpointMetadata) {
        step = metadata.step
        epoch = metadata.epoch
        batchInEpoch = metadata.batchInEpoch
        worldSize = metadata.worldSize
        currentLearningRate = metadata.currentLearningRate
        config = metadata.config
    }

    /// `metadata` where the rank has it (it opened the file), else rank 0's; collective unless every rank opened it.
    static func shared(_ metadata: CheckpointMetadata?, communicator: any Communicator, file: String) throws -> ResumePoint {
        if communicator.sharesFileAccess, let metadata { return ResumePoint(metadata) }
        let encoded = metadata.map { m in
            "\(m.step)\t\(m.epoch)\t\(m.batchInEpoch)\t\(m.worldSize)\t\(m.currentLearningRate.bitPattern)\t" + m.config
        } ?? ""
        let received = try communicator.broadcast(encoded, root: 0)
        let parts = received.split(separator: "\t", maxSplits: 5, omittingEmptySubsequences: false)
        guard parts.count == 6, let step = Int(parts[0]), let epoch = Int(parts[1]), let batch = Int(parts[2]),
              let world = Int(parts[3]), let lrBits = UInt64(parts[4]) else {
            throw CheckpointError.failedOnAnotherRank(file: file, detail: "rank 0 could not read the checkpoint's /meta")
        }
        var point = ResumePoint(CheckpointMetadata(step: step, epoch: epoch))
        point.batchInEpoch = batch
        point.worldSize = world
        point.currentLearningRate = Double(bitPattern: lrBits)
        point.config = String(parts[5])
        return point
    }
}
