import ArgumentParser
import LorsTensor

/// The `lors` launcher: one subcommand per user task. Subcommands are listed here.
public struct LorsCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "lors",
        abstract: "Train and inspect LORS (low-rank residual structure) models on CPUs and MPI clusters.",
        discussion: "Configs are YAML files (configs/*.yaml) with _base_ inheritance; --set a.b.c=value overrides any key.",
        subcommands: [TrainCommand.self, EvalCommand.self, ParamsCommand.self, InspectCommand.self, ExportCommand.self,
                      ConfigCommand.self, MakeDetectionCommand.self, EvalCOCOCommand.self])

    public init() {}
}

/// `--threads` shared by commands that compute.
public struct ThreadOptions: ParsableArguments {
    @Option(name: .long, help: "Threads for kernels and OpenBLAS (0 = all cores; default: LORS_NUM_THREADS or all cores).")
    public var threads: Int?

    public init() {}

    /// Applies the setting to the kernels and OpenBLAS.
    public func apply() {
        if let threads { Threading.setThreads(threads) } else { Threading.configureFromEnvironment() }
    }
}
