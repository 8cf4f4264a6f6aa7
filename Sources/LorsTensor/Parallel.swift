import Foundation
import CBLAS

/// The engine's thread count, and the one rule that picks it.
///
/// The engine's own threads do all the parallel work, matrix products included: OpenBLAS always runs single-threaded
/// inside them. A product OpenBLAS threaded itself would be cut into per-thread panels that depend on the thread count,
/// and its results with them; ours are cut only where no element's bits change (`gemmRowSplitAlignment`).
public enum Threading {
    nonisolated(unsafe) private static var _threads: Int = {
        // Runs on first use, before any kernel calls OpenBLAS (every product reads `threads` first).
        openblas_set_num_threads(1)
        return resolve()
    }()

    /// Number of worker threads used by kernels.
    public static var threads: Int { _threads }

    /// Sets the thread count for kernels; `0` selects all cores. (OpenBLAS stays single-threaded: the first access to
    /// `_threads`, this assignment included, has set it.)
    public static func setThreads(_ n: Int) {
        _threads = n > 0 ? n : ProcessInfo.processInfo.activeProcessorCount
    }

    /// Threads of one process, the same rule in every command: the first of `explicit` (`--threads`), `configured`
    /// (`train.threads`) and `LORS_NUM_THREADS` that is given and positive; otherwise — also when the first given one
    /// is 0, which means "automatic" — `max(1, cores / processes on this node)`. The processes on this node are
    /// `processesOnNode` when given (the launcher of `--np N` passes N), else `processesOnNode(environment:)` (the
    /// launcher's count of ranks on this node, never the world size), else 1.
    public static func resolve(explicit: Int? = nil, configured: Int? = nil, processesOnNode: Int? = nil,
                               environment: [String: String] = ProcessInfo.processInfo.environment,
                               cores: Int = ProcessInfo.processInfo.activeProcessorCount) -> Int {
        let fromEnvironment = environment["LORS_NUM_THREADS"].flatMap { Int($0) }
        if let chosen = [explicit, configured.flatMap { $0 > 0 ? $0 : nil }, fromEnvironment].compactMap({ $0 }).first, chosen > 0 {
            return chosen
        }
        let local = processesOnNode ?? Threading.processesOnNode(environment: environment) ?? 1
        return max(1, cores / max(1, local))
    }

    /// The number of ranks the launcher placed on this node, from its environment: OpenMPI's
    /// `OMPI_COMM_WORLD_LOCAL_SIZE`, MPICH/Hydra's `MPI_LOCALNRANKS`, then Slurm's per-node task list of this step or
    /// job (`SLURM_STEP_TASKS_PER_NODE`, `SLURM_TASKS_PER_NODE`: "2(x3),1" = 2 on each of the first three nodes, 1 on
    /// the fourth) at this node's index `SLURM_NODEID`, then `SLURM_NTASKS_PER_NODE`. Nil when none is set.
    public static func processesOnNode(environment: [String: String] = ProcessInfo.processInfo.environment) -> Int? {
        func number(_ key: String) -> Int? { environment[key].flatMap { Int($0.prefix { $0.isNumber }) }.flatMap { $0 > 0 ? $0 : nil } }
        if let n = number("OMPI_COMM_WORLD_LOCAL_SIZE") ?? number("MPI_LOCALNRANKS") { return n }
        let node = environment["SLURM_NODEID"].flatMap { Int($0) } ?? 0
        for key in ["SLURM_STEP_TASKS_PER_NODE", "SLURM_TASKS_PER_NODE"] {
            if let list = environment[key], let n = slurmTasks(list, node: node) { return n }
        }
        return number("SLURM_NTASKS_PER_NODE")
    }

    /// This process's index among the ranks of its node (`OMPI_COMM_WORLD_LOCAL_RANK`, `MPI_LOCALRANKID`,
    /// `SLURM_LOCALID`); nil when the launcher sets none.
    public static func localRank(environment: [String: String] = ProcessInfo.processInfo.environment) -> Int? {
        ["OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID", "SLURM_LOCALID"].lazy.compactMap { environment[$0].flatMap { Int($0) } }.first
    }

    /// Entry `node` of a Slurm task list such as "2(x3),1"; nil when malformed or too short.
    static func slurmTasks(_ list: String, node: Int) -> Int? {
        var index = 0
        for item in list.split(separator: ",") {
            let parts = item.split(separator: "(")
            guard let tasks = parts.first.flatMap({ Int($0) }) else { return nil }
            var repeats = 1
            if parts.count == 2 {
                guard parts[1].hasPrefix("x"), parts[1].hasSuffix(")"), let r = Int(parts[1].dropFirst().dropLast()) else { return nil }
                repeats = r
            }
            if node < index + repeats { return tasks > 0 ? tasks : nil }
            index += repeats
        }
        return nil
    }

    /// Applies `resolve(explicit:configured:processesOnNode:)` to the kernels.
    public static func apply(explicit: Int? = nil, configured: Int? = nil, processesOnNode: Int? = nil) {
        setThreads(resolve(explicit: explicit, configured: configured, processesOnNode: processesOnNode))
    }
}

/// Runs `body(start, end)` over `0..<count` split into at most `Threading.threads` chunks.
/// Work below `grain` elements runs inline on the calling thread.
@inline(__always)
public func parallelFor(_ count: Int, grain: Int = 32_768, _ body: (Int, Int) -> Void) {
    let threads = Threading.threads
    if threads <= 1 || count < 2 * grain {
        if count > 0 { body(0, count) }
        return
    }
    let chunks = min(threads, (count + grain - 1) / grain)
    let per = (count + chunks - 1) / chunks
    DispatchQueue.concurrentPerform(iterations: chunks) { c in
        let s = c * per
        let e = min(count, s + per)
        if s < e { body(s, e) }
    }
}

/// Parallel loop over `count` independent rows, each of `rowCost` elements of work.
@inline(__always)
public func parallelRows(_ count: Int, rowCost: Int, _ body: (Int, Int) -> Void) {
    let grainRows = max(1, 32_768 / max(1, rowCost))
    parallelFor(count, grain: grainRows, body)
}
