import ArgumentParser
import Foundation
import LorsConfig
import LorsTensor
import LorsTraining

/// `lors train CONFIG [--work-dir DIR] [--set key=value ...] [--threads T]`: trains in this process
/// (world size 1) and writes `WORK_DIR/{log.txt, metrics.jsonl, config.yaml, tb/}`.
struct TrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train a model in this process (single-node mode, world size 1).",
        discussion: "Writes WORK_DIR/log.txt, WORK_DIR/metrics.jsonl (JSON lines), WORK_DIR/tb/ (TensorBoard events) "
            + "and WORK_DIR/config.yaml (the resolved config). Default WORK_DIR: work_dirs/<config name>.")

    @OptionGroup var options: ConfigOptions

    @Option(name: .customLong("work-dir"), help: ArgumentHelp("Output directory (default: work_dirs/<config name>).", valueName: "dir"))
    var workDirectory: String?

    @OptionGroup var threadOptions: ThreadOptions

    func run() throws {
        let config = try options.load()
        if threadOptions.threads == nil, config.int("train.threads") > 0 {
            Threading.setThreads(config.int("train.threads"))
        } else {
            threadOptions.apply()
        }
        let run = try TrainingRun(config: config, workDirectory: workDirectory ?? options.defaultWorkDir)
        try run.run()
    }
}
