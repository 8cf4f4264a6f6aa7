import ArgumentParser
import Foundation
import LorsConfig
import LorsTensor
import LorsTraining

/// `lors train CONFIG [--work-dir DIR] [--set key=value ...] [--resume auto|none|PATH] [--threads T]`: trains in this
/// process (world size 1), writes `WORK_DIR/{log.txt, metrics.jsonl, config.yaml, tb/, checkpoints/}` and resumes from
/// the work dir's latest checkpoint by default. SIGUSR1/SIGTERM stop it after the current step with a checkpoint and
/// exit code `RunExitCode.resume` (75); `--debug`, `--check`: see `DebugOptions`.
struct TrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train a model in this process (single-node mode, world size 1).",
        discussion: "Writes WORK_DIR/log.txt, WORK_DIR/metrics.jsonl (JSON lines), WORK_DIR/tb/ (TensorBoard events), "
            + "WORK_DIR/config.yaml (the resolved config) and WORK_DIR/checkpoints/ (step_<8 digits>.h5, latest, best; "
            + "every checkpoint.interval_steps steps and at the end). Default WORK_DIR: work_dirs/<config name>. "
            + "A run that already reached train.max_steps says so and exits 0. "
            + "Exit codes: 0 done, 1 error, 75 stopped by SIGUSR1/SIGTERM after a checkpoint (run again to resume); "
            + "a second SIGTERM exits at once with 143.")

    @OptionGroup var options: ConfigOptions

    @Option(name: .customLong("work-dir"), help: ArgumentHelp("Output directory (default: work_dirs/<config name>).", valueName: "dir"))
    var workDirectory: String?

    @OptionGroup var resumeOptions: ResumeOptions

    @OptionGroup var threadOptions: ThreadOptions

    @OptionGroup var debugOptions: DebugOptions

    func run() throws {
        let config = try options.load()
        if threadOptions.threads == nil, config.int("train.threads") > 0 {
            Threading.setThreads(config.int("train.threads"))
        } else {
            threadOptions.apply()
        }
        let started = Date()
        let workDirectory = workDirectory ?? options.defaultWorkDir
        let checkpoints = CheckpointHook(config: config, workDirectory: workDirectory)
        let run = try TrainingRun(config: config, workDirectory: workDirectory,
                                  extraHooks: debugOptions.check ? debugOptions.hooks : [checkpoints] + debugOptions.hooks,
                                  stopOnSignals: !debugOptions.check)
        if debugOptions.check {
            try debugOptions.runCheck(run, buildSeconds: Date().timeIntervalSince(started))
            return
        }
        if case .alreadyFinished = try run.resume(resumeOptions.mode, checkpoints: checkpoints) { return }
        try run.run()
        if run.exitCode != RunExitCode.done { throw ExitCode(run.exitCode) }
    }
}
