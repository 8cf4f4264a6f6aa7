/// Errors of the distributed layer; every case names what a user needs to find the cause.
public enum DistributedError: Error, CustomStringConvertible, Equatable {
    /// The global batch does not split evenly over the ranks.
    case batchNotDivisible(globalBatchSize: Int, worldSize: Int)
    /// A rank's tensor differs from rank 0's after the start-up broadcast.
    case replicaMismatch(parameter: String, rank: Int, detail: String)
    /// Ranks registered different parameter lists (names, shapes or order).
    case parameterListMismatch(rank: Int, detail: String)
    /// A rank argument outside the communicator.
    case invalidRank(Int, worldSize: Int)
    /// Collectives called in a different order or with different arguments on different ranks.
    case collectiveMismatch(String)
    /// Every replica of a simulated world is blocked (a collective some rank never calls).
    case deadlock(String)
    /// A buffer was written while its non-blocking all-reduce was still in flight.
    case bufferModifiedInFlight(String)
    /// A blocking collective inside a recorded forward pass (unsupported in the in-process simulation).
    case collectiveDuringRecordedForward(rank: Int, operation: String)
    /// Misuse of an API (wrong sizes, wrong state), described in words.
    case usage(String)

    public var description: String {
        switch self {
        case .batchNotDivisible(let b, let w):
            return "global batch size \(b) is not divisible by the world size \(w) (each rank needs batch_size / ranks samples)"
        case .replicaMismatch(let p, let r, let d):
            return "rank \(r): parameter or buffer '\(p)' differs from rank 0 after the start-up broadcast (\(d))"
        case .parameterListMismatch(let r, let d):
            return "rank \(r): its parameter list differs from rank 0's (\(d))"
        case .invalidRank(let r, let w): return "rank \(r) is not a rank of a world of size \(w)"
        case .collectiveMismatch(let d): return "collective mismatch: \(d)"
        case .deadlock(let d): return "simulated world deadlocked: \(d)"
        case .bufferModifiedInFlight(let d): return "buffer modified while its all-reduce was in flight: \(d)"
        case .collectiveDuringRecordedForward(let r, let op):
            return "simulated rank \(r): blocking \(op) while the autograd tape holds a recorded forward; the in-process "
                + "simulation shares one tape, so run collectives only outside forward/backward"
        case .usage(let d): return d
        }
    }
}
