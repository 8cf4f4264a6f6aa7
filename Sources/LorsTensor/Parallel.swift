import Foundation
import CBLAS

/// The engine's thread count (`--threads` / `LORS_NUM_THREADS`; 0 means "all cores").
///
/// The engine's own threads do all the parallel work, matrix products included: OpenBLAS always runs single-threaded
/// inside them. A product OpenBLAS threaded itself would be cut into per-thread panels that depend on the thread count,
/// and its results with them; ours are cut only where no element's bits change (`gemmRowSplitAlignment`).
public enum Threading {
    nonisolated(unsafe) private static var _threads: Int = {
        // Runs on first use, before any kernel calls OpenBLAS (every product reads `threads` first).
        openblas_set_num_threads(1)
        if let s = ProcessInfo.processInfo.environment["LORS_NUM_THREADS"], let n = Int(s), n > 0 { return n }
        return ProcessInfo.processInfo.activeProcessorCount
    }()

    /// Number of worker threads used by kernels.
    public static var threads: Int { _threads }

    /// Sets the thread count for kernels; `0` selects all cores. (OpenBLAS stays single-threaded: the first access to
    /// `_threads`, this assignment included, has set it.)
    public static func setThreads(_ n: Int) {
        _threads = n > 0 ? n : ProcessInfo.processInfo.activeProcessorCount
    }

    /// Applies `LORS_NUM_THREADS` (or all cores) once at start-up and makes OpenBLAS single-threaded.
    public static func configureFromEnvironment() { setThreads(_threads) }
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
