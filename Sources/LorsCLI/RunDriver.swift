import Foundation
import LorsCheckpoint
import LorsConfig
import LorsDistributed
import LorsNN
import LorsOptim
import LorsTraining

/// Builds, resumes and runs one training process over a world (local, MPI, or a simulated replica):
/// the data-parallel communicator, the checkpoint hook (parallel HDF5 with MPI; ZeRO-1 aware), the
/// debug hooks and the signal stop. Shared by `lors train` and `lors-worker`, so both behave alike.
enum RunDriver {
    /// Trains and returns the process exit code (`RunExitCode`: 0 done, 75 stopped by a signal after a checkpoint).
    /// Every rank runs the checkpoint hook (collective); with simulated replicas rank 0 alone touches the files.
    static func train(config: Config, workDirectory: String, world: Communicator, resume: ResumeMode,
                      extraHooks: [any TrainingHook] = []) throws -> Int32 {
        let settings = RunSettings(config)
        let parallel = DataParallel(world, settings: settings.dist)
        let state = DataParallelCheckpointState(parallel)
        let checkpoints = CheckpointHook(settings.checkpoint, config: config, workDirectory: workDirectory, state: state)
        let run = try TrainingRun(config: config, settings: settings, workDirectory: workDirectory, parallel: parallel,
                                  extraHooks: [checkpoints] + extraHooks)
        // Start-up broadcast, reducer and (ZeRO-1) optimizer shards exist before a checkpoint is loaded into them.
        try parallel.prepare(trainer: run.trainer)
        if case .alreadyFinished = try run.resume(resume, checkpoints: checkpoints) { return RunExitCode.done }
        try run.run()
        return run.exitCode
    }
}

/// Checkpoint I/O of a data-parallel run: the optimizer state is written and read by its owners when
/// `dist.zero1` sharded it (`ZeRO1CheckpointState`), else every rank holds everything
/// (`ReplicatedCheckpointState`). Decided at each use, since the shards exist only once the
/// communicator has been prepared.
final class DataParallelCheckpointState: CheckpointState {
    let dataParallel: DataParallel

    init(_ dataParallel: DataParallel) {
        self.dataParallel = dataParallel
    }

    var communicator: any Communicator { dataParallel.communicator }

    private var current: CheckpointState {
        if let sharded = dataParallel.shardedOptimizer { return ZeRO1CheckpointState(sharded: sharded) }
        return ReplicatedCheckpointState(communicator: dataParallel.communicator)
    }

    func describe(into writer: CheckpointWriter, model: Module, optimizer: any Optimizer) throws {
        try current.describe(into: writer, model: model, optimizer: optimizer)
    }

    func load(from reader: CheckpointReader?, model: Module, optimizer: any Optimizer) throws {
        try current.load(from: reader, model: model, optimizer: optimizer)
    }

    func optimizerMetadata(_ optimizer: any Optimizer) -> OptimizerMetadata { current.optimizerMetadata(optimizer) }
}
