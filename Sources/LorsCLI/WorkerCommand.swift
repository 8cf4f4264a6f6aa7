import ArgumentParser
import Foundation
import LorsConfig
import LorsDistributed
import LorsNative
import LorsTensor
import LorsTraining

/// `lors-worker --config CONFIG [--work-dir DIR] [--set key=value ...] [--resume auto|none|PATH] [--threads T]`: one MPI rank
/// of a data-parallel run (SPMD), under `mpirun -np N` or `srun --mpi=pmix`; `lors train --np N`
/// starts N of these. Progress is printed by rank 0; an error on any rank is printed with the rank
/// and aborts every rank (`MPI_Abort`), so the job exits 1.
public struct WorkerCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "lors-worker",
        abstract: "One MPI rank of a data-parallel training run (start N with mpirun -np N, srun, or lors train --np N).",
        discussion: "Same defaults and semantics as lors train. Kernel threads per rank: --threads, else train.threads, else "
            + "LORS_NUM_THREADS, else max(1, cores / ranks on this node) (0 = that automatic value). Exit codes: 0 done, 1 error, "
            + "75 stopped by SIGUSR1/SIGTERM after a checkpoint (run again to resume; --resume auto is the default).")

    @Option(name: .customLong("config"), help: ArgumentHelp("Config file (YAML).", valueName: "config"))
    var config: String

    @Option(name: .customLong("work-dir"), help: ArgumentHelp("Output directory (default: work_dirs/<config name>).", valueName: "dir"))
    var workDirectory: String?

    @Option(name: .customLong("set"), parsing: .unconditionalSingleValue,
            help: ArgumentHelp("Override a config key: --set train.batch_size=128 (repeatable).", valueName: "key=value"))
    var overrides: [String] = []

    @Option(name: .long, help: "BLAS/kernel threads of this rank (default: see below).")
    var threads: Int?

    @OptionGroup var resumeOptions: ResumeOptions

    @Option(name: .customLong("eval-checkpoint"),
            help: ArgumentHelp("Evaluate this checkpoint (sharded over the ranks) instead of training (used by lors eval --np).", valueName: "ckpt"))
    var evalCheckpoint: String?

    @Flag(name: .long, help: "With --eval-checkpoint: print only the JSON line.")
    var json = false

    public init() {}

    /// Parses `arguments`, runs, and exits: 0 when done, 1 on any error (usage errors included; `--help` exits 0).
    public static func mainExitingOnError(_ arguments: [String]? = nil) -> Never {
        setvbuf(stdout, nil, _IOLBF, 0)
        let command: WorkerCommand
        do {
            command = try parse(arguments)
        } catch {
            if exitCode(for: error) == .success { exit(withError: error) }
            FileHandle.standardError.write(Data("lors-worker: \(fullMessage(for: error))\n".utf8))
            Foundation.exit(1)
        }
        let world: MPICommunicator
        do {
            world = try MPICommunicator()
        } catch {
            FileHandle.standardError.write(Data("lors-worker: MPI initialisation failed: \(error)\n".utf8))
            Foundation.exit(1)
        }
        let status: Int32
        do {
            status = try command.train(world: world)
        } catch {
            if world.size == 1 {
                FileHandle.standardError.write(Data("lors[rank 0]: \(error)\n".utf8))
                Foundation.exit(1)
            }
            // Prints "lors[rank r]: message" and ends every rank (MPI_Abort) so no rank waits forever in a collective.
            world.abort(message: "\(error)")
        }
        Foundation.exit(status)  // the atexit hook finalises MPI
    }

    public func run() throws {
        let status = try train(world: try MPICommunicator())
        if status != RunExitCode.done { throw ExitCode(status) }
    }

    /// Trains as one rank of `world`.
    /// Trains as one rank of `world`; returns the exit code (0 done, 75 stopped by a signal after a checkpoint).
    func train(world: Communicator) throws -> Int32 {
        let options = ConfigOptions(config: config, overrides: overrides)
        let loaded = try options.load()
        let settings = RunSettings(loaded)
        try TrainingSetup.checkTrainable(settings)  // before reading any data or checkpoint
        WorkerCommand.applyThreads(explicit: threads, settings: settings.train)
        if let evalCheckpoint {
            try EvalCommand.evaluate(config: loaded, checkpoint: evalCheckpoint, world: world, json: json)
            return RunExitCode.done
        }
        try WorkerCommand.reportLayout(world: world)
        return try RunDriver.train(config: loaded, workDirectory: workDirectory ?? options.defaultWorkDir, world: world,
                                   resume: resumeOptions.mode)
    }

    /// Rank 0 prints where every rank runs (collective): one line per node, e.g.
    /// `lors-worker: 4 rank(s) on 2 node(s): node-a: ranks 0,1 (local 0,1 of 2), threads 1,1; node-b: ...`,
    /// from each rank's host name (`MPI_Get_processor_name`), the launcher's local rank and ranks on its node, and the
    /// threads `Threading.resolve` gave it.
    static func reportLayout(world: Communicator) throws {
        let host = world.mpi != nil ? try MPIEnvironment.processorName() : ProcessInfo.processInfo.hostName
        let local = Threading.localRank().map(String.init) ?? "?"
        let size = Threading.processesOnNode().map(String.init) ?? "?"
        let mine = "\(host)\t\(local)\t\(size)\t\(Threading.threads)"
        let all = try world.allGather(bytes: Array(mine.utf8)).map { String(decoding: $0, as: UTF8.self).split(separator: "\t").map(String.init) }
        guard world.rank == 0 else { return }
        var order: [String] = []
        var byHost: [String: [(rank: Int, fields: [String])]] = [:]
        for (rank, fields) in all.enumerated() where fields.count == 4 {
            if byHost[fields[0]] == nil { order.append(fields[0]) }
            byHost[fields[0], default: []].append((rank, fields))
        }
        let nodes = order.map { host -> String in
            let ranks = byHost[host]!
            let sizes = Set(ranks.map { $0.fields[2] }).sorted().joined(separator: "/")
            return "\(host): ranks \(ranks.map { String($0.rank) }.joined(separator: ",")) (local \(ranks.map { $0.fields[1] }.joined(separator: ",")) "
                + "of \(sizes)), threads \(ranks.map { $0.fields[3] }.joined(separator: ","))"
        }
        print("lors-worker: \(world.size) rank(s) on \(order.count) node(s): \(nodes.joined(separator: "; "))")
    }

    /// Threads per rank by the one rule (`Threading.resolve`): `explicit`, else `train.threads`, else
    /// `LORS_NUM_THREADS`, else max(1, cores / ranks on this node).
    static func applyThreads(explicit: Int?, settings: RunSettings.Train) {
        Threading.apply(explicit: explicit, configured: settings.threads)
    }
}
