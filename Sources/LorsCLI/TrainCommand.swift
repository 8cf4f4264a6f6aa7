import ArgumentParser
import Foundation
import LorsConfig
import LorsDistributed
import LorsTensor
import LorsTraining

/// `lors train CONFIG [--np N | --simulate-ranks N] [--work-dir DIR] [--set key=value ...] [--resume auto|none|PATH]
/// [--threads T] [--debug] [--check]`: trains in this process (world size 1, or N replicas simulated in-process), or
/// starts `mpirun -np N lors-worker ...`; writes `WORK_DIR/{log.txt, metrics.jsonl, config.yaml, tb/, checkpoints/}`
/// and resumes from the work dir's latest checkpoint by default. SIGUSR1/SIGTERM stop it after the current step with
/// a checkpoint and exit code `RunExitCode.resume` (75); `--debug`, `--check`: see `DebugOptions`.
struct TrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train a model: in this process (single-node mode), or on N MPI ranks with --np N.",
        discussion: "Writes WORK_DIR/log.txt, WORK_DIR/metrics.jsonl (JSON lines), WORK_DIR/tb/ (TensorBoard events), "
            + "WORK_DIR/config.yaml (the resolved config) and WORK_DIR/checkpoints/ (step_<8 digits>.h5, latest, best; "
            + "every checkpoint.interval_steps steps and at the end). Default WORK_DIR: work_dirs/<config name>. "
            + "A run that already reached train.max_steps says so and exits 0. "
            + "--np N runs `mpirun -np N lors-worker` (next to this binary) with --threads T for every rank, T by the rule "
            + "of --threads (default max(1, cores / N)), --oversubscribe when N exceeds the cores and the root permissions a container needs; "
            + "inside a Slurm allocation N must not exceed SLURM_NTASKS. "
            + "--simulate-ranks N runs N data-parallel replicas in this process (debugging; same numerics as N ranks). "
            + "Exit codes: 0 done, 1 error, 75 stopped by SIGUSR1/SIGTERM after a checkpoint (run again to resume); "
            + "a second SIGTERM exits at once with 143.")

    @OptionGroup var options: ConfigOptions

    @Option(name: .customLong("work-dir"), help: ArgumentHelp("Output directory (default: work_dirs/<config name>).", valueName: "dir"))
    var workDirectory: String?

    @Option(name: .customLong("np"), help: ArgumentHelp("Start N MPI ranks (mpirun -np N lors-worker ...).", valueName: "N"))
    var ranks: Int?

    @Option(name: .customLong("simulate-ranks"), help: ArgumentHelp("Run N replicas in this process (debugging).", valueName: "N"))
    var simulatedRanks: Int?

    @OptionGroup var resumeOptions: ResumeOptions

    @OptionGroup var threadOptions: ThreadOptions

    @OptionGroup var debugOptions: DebugOptions

    func validate() throws {
        if let ranks, ranks < 1 { throw ValidationError("--np must be at least 1, got \(ranks)") }
        if let simulatedRanks, simulatedRanks < 1 { throw ValidationError("--simulate-ranks must be at least 1, got \(simulatedRanks)") }
        if ranks != nil && simulatedRanks != nil { throw ValidationError("--np and --simulate-ranks exclude each other") }
        if ranks != nil && (debugOptions.debug || debugOptions.check) {
            throw ValidationError("--debug and --check are single-node modes: use them without --np")
        }
    }

    func run() throws {
        let workDir = workDirectory ?? options.defaultWorkDir
        if let ranks {
            let settings = RunSettings(try options.load())  // fail fast, before starting any rank
            try TrainingSetup.checkTrainable(settings)
            let threads = Threading.resolve(explicit: threadOptions.threads, configured: settings.train.threads, processesOnNode: ranks)
            let status = try MPILauncher(ranks: ranks, threadsPerRank: threads)
                .run(config: options.config, workDirectory: workDirectory, overrides: options.overrides,
                     workerArguments: ["--resume", resumeOptions.argument])
            if status != 0 { throw ExitCode(status) }
            return
        }
        let config = try options.load()
        let settings = RunSettings(config)
        try TrainingSetup.checkTrainable(settings)  // before loading any data
        threadOptions.apply(configured: settings.train.threads)
        if debugOptions.check {
            let started = Date()
            let run = try TrainingRun(config: config, workDirectory: workDir, extraHooks: debugOptions.hooks, stopOnSignals: false)
            try debugOptions.runCheck(run, buildSeconds: Date().timeIntervalSince(started))
            return
        }
        var status = RunExitCode.done
        if let simulatedRanks {
            // One process holds every replica: replica 0 writes and reads the checkpoint files (the other replicas
            // hand it their ZeRO-1 shards), the same files an MPI run of that many ranks writes and reads.
            let codes = try SimulatedWorld(size: simulatedRanks).run { replica in
                try RunDriver.train(config: config, workDirectory: workDir, world: replica, resume: resumeOptions.mode,
                                    extraHooks: replica.rank == 0 ? debugOptions.hooks : [])
            }
            status = codes.max() ?? RunExitCode.done
        } else {
            status = try RunDriver.train(config: config, workDirectory: workDir, world: LocalCommunicator(),
                                         resume: resumeOptions.mode, extraHooks: debugOptions.hooks)
        }
        if status != RunExitCode.done { throw ExitCode(status) }
    }
}

/// Builds and runs the `mpirun` command line of `lors train --np N`.
struct MPILauncher {
    var ranks: Int
    /// Kernel threads of every rank (`Threading.resolve` with the launcher's rank count as processes on the node).
    var threadsPerRank: Int
    var environment = ProcessInfo.processInfo.environment
    var cores = ProcessInfo.processInfo.activeProcessorCount

    /// Inside a Slurm allocation (SLURM_JOB_ID): its task count.
    var slurmTasks: Int? {
        guard environment["SLURM_JOB_ID"] != nil else { return nil }
        return environment["SLURM_NTASKS"].flatMap(Int.init)
    }

    /// `lors-worker` next to this executable.
    static func workerPath() -> String {
        let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        return ((exe as NSString).deletingLastPathComponent as NSString).appendingPathComponent("lors-worker")
    }

    /// The mpirun arguments (after `mpirun`) and the extra environment.
    func commandLine(worker: String, config: String, workDirectory: String?, overrides: [String]) throws -> (arguments: [String], environment: [String: String]) {
        var args: [String] = []
        var env: [String: String] = [:]
        if let tasks = slurmTasks {
            guard ranks <= tasks else {
                throw LaunchError("--np \(ranks) exceeds the Slurm allocation's SLURM_NTASKS = \(tasks) "
                                  + "(use --np \(tasks) or fewer, or a larger allocation)")
            }
        } else if ranks > cores {
            args.append("--oversubscribe")
        }
        if getuid() == 0 {
            env["OMPI_ALLOW_RUN_AS_ROOT"] = "1"
            env["OMPI_ALLOW_RUN_AS_ROOT_CONFIRM"] = "1"
        }
        // Several ranks share the cores with their own BLAS threads: no binding to one core each.
        args += ["--bind-to", "none"]
        env["LORS_NUM_THREADS"] = String(threadsPerRank)
        env["OPENBLAS_NUM_THREADS"] = String(threadsPerRank)
        // Containers often forbid cross-memory attach (vader's large-message path); copy-in/out always works.
        if environment["OMPI_MCA_btl_vader_single_copy_mechanism"] == nil { env["OMPI_MCA_btl_vader_single_copy_mechanism"] = "none" }
        for name in ["LORS_NUM_THREADS", "OPENBLAS_NUM_THREADS"] { args += ["-x", name] }
        args += ["-np", String(ranks), worker, "--config", config, "--threads", String(threadsPerRank)]
        if let workDirectory { args += ["--work-dir", workDirectory] }
        for o in overrides { args += ["--set", o] }
        return (args, env)
    }

    /// Runs mpirun (inheriting stdout/stderr) and returns its exit status.
    /// - Parameter workerArguments: appended to each `lors-worker` command line (e.g. `--resume auto`).
    func run(config: String, workDirectory: String?, overrides: [String], workerArguments: [String]) throws -> Int32 {
        let worker = MPILauncher.workerPath()
        guard FileManager.default.isExecutableFile(atPath: worker) else {
            throw LaunchError("lors-worker not found next to lors (\(worker)); build it with swift build")
        }
        var (args, extra) = try commandLine(worker: worker, config: config, workDirectory: workDirectory, overrides: overrides)
        args += workerArguments
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["mpirun"] + args
        process.environment = environment.merging(extra) { _, new in new }
        FileHandle.standardError.write(Data("lors train: mpirun \(args.joined(separator: " "))\n".utf8))
        // A SIGTERM to the launcher reaches the ranks as SIGUSR1 through mpirun (which kills ranks ~1 s after
        // forwarding a SIGTERM), so they agree to stop, checkpoint and exit 75; a second SIGTERM is passed on.
        return try SignalForwarding.runChild(process).status
    }
}

/// A launcher error (exit code 1, message on stderr).
struct LaunchError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
