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
    @Option(name: .long, help: "Kernel threads of this process (default: train.threads, else LORS_NUM_THREADS, else cores / processes on this node; 0 = that automatic value).")
    public var threads: Int?

    public init() {}

    /// Applies `Threading.resolve` with this option and `configured` (`train.threads`, 0 = unset).
    public func apply(configured: Int? = nil) {
        Threading.apply(explicit: threads, configured: configured)
    }
}
