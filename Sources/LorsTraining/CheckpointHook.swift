import Foundation
import Logging
import LorsCheckpoint
import LorsConfig
import LorsDistributed
import LorsNN
import LorsOptim
import LorsTensor

/// How this rank's model and optimizer state go into and come out of a checkpoint: the seam between the checkpoint
/// hook (and resume) and the data-parallel side.
///
/// Protocol (every method is collective over `communicator`; every rank calls it in the same order):
/// - `describe` makes the SAME `CheckpointWriter.add…` calls (paths, shapes, order) on every rank; only the values
///   and the shard ranges differ. Replicated tensors (`add`, `addModel`) are written by one rank each, the writer
///   balancing them; state a rank owns (ZeRO-1) goes in with `addShard`/`addOptimizerStateShard`, the owner giving the
///   whole range (or its part) and the other ranks an empty range, so together they tile every tensor.
/// - `load` reads what this rank needs; it may read any part of any dataset (`CheckpointReader.read(_:range:)`), so a
///   checkpoint written by N ranks loads on M ranks, ZeRO-1 state re-partitioned by the reader's ownership.
/// - `optimizerMetadata` describes the (logical, whole) optimizer's hyper-parameters, identical on every rank.
///
/// In-process replicas (`SimulatedWorld`: no MPI, and the HDF5 library is not thread-safe) share no file access:
/// rank 0 alone writes and reads (`CheckpointDirectory.fileCommunicator`). Its writer describes the whole file, the
/// state the other replicas hold (ZeRO-1 shards) gathered to it over `communicator`; the other replicas' writers are
/// not written. On load rank 0 gets the reader (the others nil), reads everything, and sends each replica its part
/// over `communicator`. The file is the one MPI ranks of that world size write and read.
///
/// `ReplicatedCheckpointState` (every rank holds the whole state; serial or plain data parallel) and
/// `ZeRO1CheckpointState` (a `ShardedOptimizer`) implement it.
public protocol CheckpointState: AnyObject {
    /// The ranks of the run (`LocalCommunicator` for one process): MPI ranks write and read the files together,
    /// in-process replicas through rank 0.
    var communicator: any Communicator { get }
    /// Adds the model and optimizer datasets to `writer`.
    func describe(into writer: CheckpointWriter, model: Module, optimizer: any Optimizer) throws
    /// Loads the model and this rank's optimizer state from `reader` (checked: presence, shapes, checksums).
    /// `reader` is nil on the ranks that do not open the file (in-process replicas other than rank 0), which
    /// receive their part from rank 0 over `communicator`.
    func load(from reader: CheckpointReader?, model: Module, optimizer: any Optimizer) throws
    /// `/optimizer` attributes.
    func optimizerMetadata(_ optimizer: any Optimizer) -> OptimizerMetadata
}

/// Every rank holds the whole model and optimizer state (world size 1, or data parallel without ZeRO-1). In parallel
/// mode the writer still splits the tensors between the ranks, so no rank writes everything.
public final class ReplicatedCheckpointState: CheckpointState {
    public let communicator: any Communicator
    public init(communicator: any Communicator = LocalCommunicator()) { self.communicator = communicator }

    public func describe(into writer: CheckpointWriter, model: Module, optimizer: any Optimizer) throws {
        writer.addModel(model)
        writer.addOptimizerState(optimizer, model: model)
    }

    public func load(from reader: CheckpointReader?, model: Module, optimizer: any Optimizer) throws {
        if communicator.sharesFileAccess {
            let reader = try requireReader(reader, rank: communicator.rank)
            try reader.loadModel(into: model)
            try reader.loadOptimizer(optimizer, model: model)
            return
        }
        // In-process replicas: rank 0 reads, then hands the model and the whole optimizer state to the others.
        try communicator.agreeOnRootRead(reader) { reader in
            try reader.loadModel(into: model)
            try reader.loadOptimizer(optimizer, model: model)
        }
        try ReplicaSynchronization.broadcastInitialState(model.namedParameters() + model.namedBuffers(), communicator: communicator)
        try broadcastOptimizerState(optimizer, communicator: communicator)
    }

    public func optimizerMetadata(_ optimizer: any Optimizer) -> OptimizerMetadata { OptimizerMetadata(describing: optimizer) }
}

/// Writes a checkpoint every `checkpoint.interval_steps` steps and when the run ends (end of schedule,
/// `train.max_steps`, or a stop request), keeps `checkpoint.keep_last`, and moves `best` by the evaluation's top-1
/// (higher is better).
///
/// When a checkpoint is due at a step that ends an epoch, it is written in `afterEpoch` (this hook runs after the
/// evaluation hook), so an evaluation of that step is recorded in it (`eval_metric`) and can make it `best`; the
/// checkpoint of the final step is written in `afterRun`, after the end-of-run evaluation.
///
/// Metadata (`/meta`): step, epoch and position in it, world size, seed, the resolved config, base and current LR, and
/// in `extra` the schedule's state (`iterations_per_epoch`, `total_steps`, `lr_schedule_iteration`, next step's LR)
/// and the optimizer's step count. The LR schedule, data order, augmentation and dropout are functions of the step,
/// so this and the model/optimizer tensors are an exact resume point.
public final class CheckpointHook: TrainingHook {
    public let directory: CheckpointDirectory
    public let intervalSteps: Int
    public let keepLast: Int
    public let configYAML: String
    public let state: CheckpointState
    /// Step of the newest checkpoint this hook wrote (or the run resumed from).
    public internal(set) var lastSavedStep: Int?
    /// Every commit of this run, in order.
    public private(set) var commits: [CheckpointCommit] = []
    private var pendingStep: Int?

    /// - Parameters:
    ///   - state: how the tensors are written and read (default: replicated, serial).
    public init(workDirectory: String, intervalSteps: Int, keepLast: Int, configYAML: String,
                state: CheckpointState = ReplicatedCheckpointState()) {
        self.directory = CheckpointDirectory(workDirectory: workDirectory, communicator: state.communicator)
        self.intervalSteps = intervalSteps
        self.keepLast = max(1, keepLast)
        self.configYAML = configYAML
        self.state = state
    }

    /// Cadence from `settings` (`checkpoint.*`); the stored config is `config`'s resolved YAML.
    public convenience init(_ settings: RunSettings.Checkpoint, config: Config, workDirectory: String,
                            state: CheckpointState = ReplicatedCheckpointState()) {
        self.init(workDirectory: workDirectory, intervalSteps: settings.intervalSteps, keepLast: settings.keepLast,
                  configYAML: config.resolvedYAML, state: state)
    }

    public func afterIteration(_ trainer: Trainer, _ result: StepResult) throws {
        let step = result.step
        guard intervalSteps > 0, step % intervalSteps == 0, step < trainer.finalStep, trainer.state.stopReason == nil else { return }
        if step % trainer.state.iterationsPerEpoch == 0 {
            pendingStep = step // the epoch ends here: save after its evaluation
        } else {
            try save(trainer)
        }
    }

    public func afterEpoch(_ trainer: Trainer) throws {
        if let pending = pendingStep, pending == trainer.state.step { try save(trainer) }
        pendingStep = nil
    }

    public func afterRun(_ trainer: Trainer) throws {
        pendingStep = nil
        if lastSavedStep != trainer.state.step { try save(trainer) }
    }

    /// Writes, verifies and commits the checkpoint of the current step (collective in parallel mode).
    @discardableResult
    public func save(_ trainer: Trainer) throws -> CheckpointCommit {
        let s = trainer.state
        let evaluation = trainer.lastEvaluation.flatMap { $0.step == s.step ? $0.metrics : nil }
        let metric = evaluation?.primaryValue
        let schedule = trainer.schedule
        let extra: [String: String] = [
            "iterations_per_epoch": String(s.iterationsPerEpoch),
            "total_steps": String(trainer.totalSteps),
            "lr_schedule_iteration": String(s.step),
            "next_lr": String(schedule.learningRate(iteration: s.step, epoch: s.epoch)),
            "optimizer_step_count": String(trainer.optimizer.stepCount),
            "global_batch_size": String(trainer.settings.batchSize),
        ]
        let metadata = CheckpointMetadata(step: s.step, epoch: s.epoch, batchInEpoch: s.iterationInEpoch,
                                          worldSize: trainer.communicator.size, seed: trainer.settings.seed, config: configYAML,
                                          baseLearningRate: schedule.baseLearningRate, currentLearningRate: s.learningRate,
                                          evalMetric: metric, extra: extra)
        let started = Date()
        let commit = try directory.save(metadata: metadata, optimizer: state.optimizerMetadata(trainer.optimizer),
                                        higherIsBetter: true, keepLast: keepLast) { writer in
            try state.describe(into: writer, model: trainer.model, optimizer: trainer.optimizer)
        }
        lastSavedStep = s.step
        commits.append(commit)
        var line = "checkpoint step \(s.step) → \(commit.path) (\(String(format: "%.2f", Date().timeIntervalSince(started)))s)"
        if let evaluation, let primary = evaluation.values.first(where: { $0.name == evaluation.primary }) { line += ", \(primary.text)" }
        if commit.isBest { line += ", best" }
        if !commit.removed.isEmpty { line += ", removed \(commit.removed.joined(separator: ", "))" }
        trainer.log.info("\(line)")
        return commit
    }
}

extension CheckpointHook: CheckpointSaving {
    /// Writes the checkpoint of the current step for a stop request (idempotent per step). Every file
    /// is written under a temporary name and renamed, so an immediate exit on a second SIGTERM at any
    /// point leaves the previous complete checkpoint and `latest` intact.
    public func saveCheckpointNow(_ trainer: Trainer, reason: String) throws {
        guard lastSavedStep != trainer.state.step else { return }
        trainer.log.info("checkpoint for \(reason)")
        try save(trainer)
    }
}

/// The reader a rank that opens checkpoint files must have been given.
func requireReader(_ reader: CheckpointReader?, rank: Int) throws -> CheckpointReader {
    guard let reader else {
        throw DistributedError.usage("checkpoint load: rank \(rank) opens the checkpoint file but was given no reader")
    }
    return reader
}

extension Communicator {
    /// Runs `body` on rank 0 only and makes its outcome collective: every rank throws when it failed (rank 0 its own
    /// error, the others `failedOnAnotherRank` naming `file` with its message).
    func onRoot(file: String, _ body: () throws -> Void) throws {
        var failure = ""
        var rootError: Error?
        if isRoot {
            do { try body() } catch { rootError = error; failure = "\(error)" }
        }
        let message = try broadcast(failure, root: 0)
        if let rootError { throw rootError }
        if !message.isEmpty { throw CheckpointError.failedOnAnotherRank(file: file, detail: "rank 0: \(message)") }
    }

    /// In-process replicas: runs `body` with rank 0's reader (the only one), the outcome collective like `onRoot`.
    func agreeOnRootRead(_ reader: CheckpointReader?, _ body: (CheckpointReader) throws -> Void) throws {
        try onRoot(file: reader?.path ?? "checkpoint") { try body(try requireReader(reader, rank: rank)) }
    }
}

/// Every tensor of rank 0's optimizer state (`stateDictionary()`) to the other ranks, which adopt it: the names and
/// shapes in one broadcast, then each tensor. Collective.
func broadcastOptimizerState(_ optimizer: any Optimizer, communicator: any Communicator) throws {
    let state = communicator.isRoot ? optimizer.stateDictionary() : [:]
    let keys = state.keys.sorted()
    let header = try communicator.broadcast(keys.map { key in
        key + "\t" + state[key]!.shape.map(String.init).joined(separator: ",")
    }.joined(separator: "\n"), root: 0)
    var received: [String: Tensor] = [:]
    for line in header.split(separator: "\n") {
        let parts = line.split(separator: "\t", omittingEmptySubsequences: false)
        let key = String(parts[0])
        let shape = parts[1].split(separator: ",").compactMap { Int($0) }
        var values = communicator.isRoot ? state[key]!.toArray() : [Float](repeating: 0, count: shape.reduce(1, *))
        try communicator.broadcast(&values, root: 0)
        if !communicator.isRoot { received[key] = Tensor(values, shape: shape) }
    }
    guard !communicator.isRoot else { return }
    do {
        try optimizer.loadStateDictionary(adopting: received)
    } catch {
        throw CheckpointError.optimizerState(file: "checkpoint (rank \(communicator.rank), state from rank 0)", detail: "\(error)")
    }
}
