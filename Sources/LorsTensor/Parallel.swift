import Foundation
import CBLAS

/// Thread settings shared by the elementwise/reduction kernels and OpenBLAS.
///
/// One setting governs both (`--threads` / `LORS_NUM_THREADS`); 0 means "all cores".
public enum Threading {
    nonisolated(unsafe) private static var _threads: Int = {
        if let s = ProcessInfo.processInfo.environment["LORS_NUM_THREADS"], let n = Int(s), n > 0 { return n }
        return ProcessInfo.processInfo.activeProcessorCount
    }()

    /// Number of worker threads used by kernels (and by OpenBLAS).
    public static var threads: Int { _threads }

    /// Sets the thread count for kernels and OpenBLAS; `0` selects all cores.
    public static func setThreads(_ n: Int) {
        let count = n > 0 ? n : ProcessInfo.processInfo.activeProcessorCount
        _threads = count
        openblas_set_num_threads(Int32(count))
    }

    /// Applies `LORS_NUM_THREADS` (or all cores) to OpenBLAS once at start-up.
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
