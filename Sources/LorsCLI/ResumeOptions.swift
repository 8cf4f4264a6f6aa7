import ArgumentParser
import LorsCheckpoint

/// `--resume auto|none|PATH` (default `auto`), shared by `lors train` and `lors-worker`.
///
/// `auto`: continue from the work dir's `checkpoints/latest` (a damaged one falls back to the previous complete
/// checkpoint with a warning; none: start fresh). `none`: start fresh. Anything else: that checkpoint file.
public struct ResumeOptions: ParsableArguments {
    @Option(name: .customLong("resume"),
            help: ArgumentHelp("Resume from the work dir's latest checkpoint (auto), start fresh (none), or from this file.",
                               valueName: "auto|none|PATH"))
    public var resume: String = "auto"

    public init() {}

    /// The argument as given (forwarded to `lors-worker` by `lors train --np`).
    public var argument: String { resume }

    /// The parsed mode.
    public var mode: ResumeMode { ResumeMode(argument: resume) }
}
