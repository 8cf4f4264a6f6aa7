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
    /// `processesOnNode` when given (the launcher of `--np N` passes N), else the MPI or Slurm local task count of the
    /// environment (`OMPI_COMM_WORLD_LOCAL_SIZE`, `MPI_LOCALNRANKS`, `SLURM_NTASKS_PER_NODE`), else 1.
    public static func resolve(explicit: Int? = nil, configured: Int? = nil, processesOnNode: Int? = nil,
                               environment: [String: String] = ProcessInfo.processInfo.environment,
                               cores: Int = ProcessInfo.processInfo.activeProcessorCount) -> Int {
        let fromEnvironment = environment["LORS_NUM_THREADS"].flatMap { Int($0) }
        if let chosen = [explicit, configured.flatMap { $0 > 0 ? $0 : nil }, fromEnvironment].compactMap({ $0 }).first, chosen > 0 {
            return chosen
        }
        let local = processesOnNode ?? ["OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS", "SLURM_NTASKS_PER_NODE"]
            .lazy.compactMap { environment[$0].flatMap { Int($0.prefix { $0.isNumber }) } }.first ?? 1
        return max(1, cores / max(1, local))
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
