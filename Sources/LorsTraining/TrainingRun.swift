import Foundation
import Logging
import LorsConfig
import LorsData
import LorsDistributed
import LorsNN
import LorsTensor

/// A whole `lors train` run: work dir, logs, data, model, optimizer, schedule, standard hooks.
///
/// Integration points: `parallel` (data parallelism over a communicator; world size 1 by default),
/// `extraHooks` (checkpoint, signal, debug hooks run after the standard ones, so they see the
/// evaluation results), and `ModelBuilder` (which picks vanilla or LORS from `model.lors`).
/// A resume sets `trainer.state.step` (and loads model/optimizer state) before `trainer.run()`.
/// With `stopOnSignals` (the default) a `StopRequestHook` runs last: SIGUSR1/SIGTERM stop the run
/// at the next step boundary with a checkpoint, and `exitCode` is then `RunExitCode.resume`.
public final class TrainingRun {
    /// The validated config: written to `WORK_DIR/config.yaml` (and by the checkpoint hook into checkpoints, where a
    /// resume compares it). Everything else reads `settings`.
    public let config: Config
    /// `config`, decoded once.
    public let settings: RunSettings
    public let workDirectory: String
    public let trainer: Trainer

    /// - Parameter parallel: data parallelism over the process group; nil = `DataParallel` over `LocalCommunicator`
    ///   (world size 1 with the same reducer, clip order and `dist.*` settings as N ranks).
    /// - Parameter stopOnSignals: SIGUSR1/SIGTERM stop the run after a step with a checkpoint (exit code 75).
    public convenience init(config: Config, workDirectory: String, parallel: DataParallel? = nil,
                            extraHooks: [any TrainingHook] = [], stopOnSignals: Bool = true) throws {
        try self.init(config: config, settings: RunSettings(config), workDirectory: workDirectory, parallel: parallel,
                      extraHooks: extraHooks, stopOnSignals: stopOnSignals)
    }

    /// A run of `config` whose decoded settings the caller already holds (`settings` must be `RunSettings(config)`).
    /// Refuses a model or dataset it cannot train (`TrainingSetup.checkTrainable`) before creating the work dir.
    public init(config: Config, settings: RunSettings, workDirectory: String, parallel: DataParallel? = nil,
                extraHooks: [any TrainingHook] = [], stopOnSignals: Bool = true) throws {
        try TrainingSetup.checkTrainable(settings)
        let parallel = parallel ?? DataParallel(LocalCommunicator(), settings: settings.dist)
        let communicator = parallel.communicator
        self.config = config
        self.settings = settings
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
                                          console: settings.log.console, level: TrainingRun.level(settings.log.level))
                         : Logger.silent
        if isMain {
            let yaml = config.resolvedYAML
            let path = (workDirectory as NSString).appendingPathComponent("config.yaml")
            do { try yaml.write(toFile: path, atomically: true, encoding: .utf8) } catch {
                throw TrainingError.cannotWrite(path: path, detail: "\(error)")
            }
        }
        log.info("lors train \(config.sourceFile) → \(workDirectory) (rank \(communicator.rank) of \(communicator.size))")

        let task: any TrainingTask
        do {
            task = try TrainingSetup.task(settings, communicator: communicator, workDirectory: workDirectory)
        } catch {
            log.error("\(error)")  // log.txt says why the run stopped (a missing set, a model that does not fit its data)
            throw error
        }
        let loop = TrainingSetup.settings(settings)
        let iterations = max(1, Trainer.sampler(task, settings: loop).batchesPerEpoch)
        let optimizer = TrainingSetup.optimizer(settings.optimizer, model: task.model)
        let schedule = TrainingSetup.schedule(settings, iterationsPerEpoch: iterations)

        var hooks: [any TrainingHook] = [LRScheduleHook(), EvaluationHook(intervalEpochs: loop.evalIntervalEpochs)]
        let metrics = isMain ? try MetricsWriter(path: (workDirectory as NSString).appendingPathComponent("metrics.jsonl")) : nil
        let tensorBoard = isMain && settings.log.tensorboard
            ? try TensorBoardWriter(directory: (workDirectory as NSString).appendingPathComponent("tb")) : nil
        hooks.append(LoggerHook(interval: settings.train.logInterval, metrics: metrics, tensorBoard: tensorBoard))
        hooks += extraHooks
        if stopOnSignals { hooks.append(StopRequestHook()) }
        trainer = try Trainer(task: task, optimizer: optimizer, schedule: schedule, settings: loop,
                              parallel: parallel, hooks: hooks, log: log)
    }

    /// A run over `world` (MPI, local or a simulated replica) with the `dist.*` settings of `config`.
    public convenience init(config: Config, workDirectory: String, world: Communicator, extraHooks: [any TrainingHook] = []) throws {
        let settings = RunSettings(config)
        try self.init(config: config, settings: settings, workDirectory: workDirectory,
                      parallel: DataParallel(world, settings: settings.dist), extraHooks: extraHooks)
    }

    /// The logger level of `log.level`.
    static func level(_ level: RunSettings.Log.Level) -> Logger.Level {
        switch level {
        case .debug: return .debug
        case .info: return .info
        case .warning: return .warning
        case .error: return .error
        }
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
