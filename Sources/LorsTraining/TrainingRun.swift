import Foundation
import Logging
import LorsConfig
import LorsData
import LorsDistributed
import LorsNN
import LorsTensor

/// A whole `lors train` run: work dir, logs, data, model, optimizer, schedule, standard hooks.
///
/// Integration points: `communicator` (LorsDistributed's adapter; world size 1 by default),
/// `extraHooks` (checkpoint, signal, debug hooks run after the standard ones, so they see the
/// evaluation results), and `ModelBuilder` (which picks vanilla or LORS from `model.lors`).
/// A resume sets `trainer.state.step` (and loads model/optimizer state) before `trainer.run()`.
/// With `stopOnSignals` (the default) a `StopRequestHook` runs last: SIGUSR1/SIGTERM stop the run
/// at the next step boundary with a checkpoint, and `exitCode` is then `RunExitCode.resume`.
public final class TrainingRun {
    public let config: Config
    public let workDirectory: String
    public let trainer: Trainer

    /// - Parameter communicator: the process group; nil = `DataParallelCommunicator` over
    ///   `LocalCommunicator` (world size 1 with the same reducer, clip order and `dist.*` settings as N ranks).
    /// - Parameter stopOnSignals: SIGUSR1/SIGTERM stop the run after a step with a checkpoint (exit code 75).
    public init(config: Config, workDirectory: String, communicator: (any TrainingCommunicator)? = nil,
                extraHooks: [any TrainingHook] = [], stopOnSignals: Bool = true) throws {
        let communicator = communicator ?? DataParallelCommunicator(LocalCommunicator(), config: config)
        self.config = config
        self.workDirectory = workDirectory
        let isMain = communicator.rank == 0
        if isMain {
            do {
                try FileManager.default.createDirectory(atPath: workDirectory, withIntermediateDirectories: true)
            } catch {
                throw TrainingError.cannotWrite(path: workDirectory, detail: "\(error)")
            }
        }
        let log = isMain ? try Logger.run(path: (workDirectory as NSString).appendingPathComponent("log.txt"),
                                          console: config.bool("log.console"),
                                          level: Logger.Level(rawValue: config.string("log.level")) ?? .info)
                         : Logger.silent
        if isMain {
            let yaml = config.yaml(header: ["resolved from \(config.sourceFile)"])
            let path = (workDirectory as NSString).appendingPathComponent("config.yaml")
            do { try yaml.write(toFile: path, atomically: true, encoding: .utf8) } catch {
                throw TrainingError.cannotWrite(path: path, detail: "\(error)")
            }
        }
        log.info("lors train \(config.sourceFile) → \(workDirectory) (rank \(communicator.rank) of \(communicator.worldSize))")

        let task = try TrainingSetup.task(config)
        let settings = TrainingSetup.settings(config)
        let iterations = max(1, Trainer.sampler(task, settings: settings).batchesPerEpoch)
        let optimizer = TrainingSetup.optimizer(config, model: task.model)
        let schedule = TrainingSetup.schedule(config, iterationsPerEpoch: iterations)

        var hooks: [any TrainingHook] = [LRScheduleHook(), EvaluationHook(intervalEpochs: settings.evalIntervalEpochs)]
        let metrics = isMain ? try MetricsWriter(path: (workDirectory as NSString).appendingPathComponent("metrics.jsonl")) : nil
        let tensorBoard = isMain && config.bool("log.tensorboard")
            ? try TensorBoardWriter(directory: (workDirectory as NSString).appendingPathComponent("tb")) : nil
        hooks.append(LoggerHook(interval: config.int("train.log_interval"), metrics: metrics, tensorBoard: tensorBoard))
        hooks += extraHooks
        if stopOnSignals { hooks.append(StopRequestHook()) }
        trainer = try Trainer(task: task, optimizer: optimizer, schedule: schedule, settings: settings,
                              communicator: communicator, hooks: hooks, log: log)
    }

    /// A run over `world` (MPI, local or a simulated replica) with the `dist.*` settings of `config`.
    public convenience init(config: Config, workDirectory: String, world: Communicator, extraHooks: [any TrainingHook] = []) throws {
        try self.init(config: config, workDirectory: workDirectory,
                      communicator: DataParallelCommunicator(world, config: config), extraHooks: extraHooks)
    }

    /// Runs the loop to the end of the schedule or `train.max_steps`. An error that ends the run is logged at level
    /// error (so `log.txt` says why the run stopped) and thrown.
    public func run() throws { try loggingErrors { try trainer.run() } }

    /// `body`'s result; an error it throws is logged at level error, then rethrown.
    func loggingErrors<T>(_ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch {
            trainer.log.error("\(error)")
            throw error
        }
    }

    /// The process exit code after `run()`: `RunExitCode.resume` when a signal stopped the run (after
    /// its checkpoint), else `RunExitCode.done` (errors are thrown and exit with `RunExitCode.error`).
    public var exitCode: Int32 { trainer.interruption == nil ? RunExitCode.done : RunExitCode.resume }
}
