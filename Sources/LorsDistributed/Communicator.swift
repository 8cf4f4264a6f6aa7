import Foundation
import LorsNative

/// A pending non-blocking collective (`MPI_Request` for MPI, a slot of a `SimulatedWorld`).
///
/// The buffer handed to the collective must stay alive and must not be written until `test()` has
/// returned true or `wait()` has returned.
public protocol CommunicationRequest: AnyObject {
    /// True once the operation has completed; drives progress. Never blocks.
    func test() throws -> Bool
    /// Blocks until the operation has completed.
    func wait() throws
}

/// The one communicator of lors: the collectives the trainer, the checkpoints and the tools need, over MPI
/// (`MPICommunicator`), in-process replicas (`SimulatedCommunicator` of a `SimulatedWorld`) or one process
/// (`LocalCommunicator`).
///
/// Every method is collective: all ranks call it, in the same order, with matching counts (as in MPI).
/// Sums of float buffers are the reduction the gradient reducer uses; everything else is small
/// metadata (checksums, counters, losses, manifests). Sums of several values take ONE collective
/// (pass them as an array). `mpi` is the raw MPI communicator for what needs one (parallel HDF5
/// file access); nil for local and simulated worlds.
public protocol Communicator: AnyObject {
    /// This process's (or replica's) rank, `0..<size`.
    var rank: Int { get }
    /// The number of ranks.
    var size: Int { get }
    /// The MPI communicator behind this one (parallel HDF5 opens files collectively over it); nil when the ranks
    /// are not MPI processes (one process, or in-process replicas).
    var mpi: MPIComm? { get }

    /// In-place sum over all ranks of `buffer` (same count everywhere); blocking.
    func allReduceSum(_ buffer: UnsafeMutableBufferPointer<Float>) throws
    /// Starts an in-place sum over all ranks of `buffer`; complete it with the request.
    func startAllReduceSum(_ buffer: UnsafeMutableBufferPointer<Float>) throws -> CommunicationRequest
    /// Element-wise sum over all ranks of `values` (same count everywhere), in one collective.
    func allReduceSum(_ values: [Double]) throws -> [Double]
    /// Element-wise sum over all ranks of `values` (same count everywhere), in one collective.
    func allReduceSum(_ values: [Int64]) throws -> [Int64]
    /// The smallest `value` of all ranks.
    func allReduceMin(_ value: Int64) throws -> Int64
    /// The largest `value` of all ranks.
    func allReduceMax(_ value: Int64) throws -> Int64
    /// Overwrites `buffer` on every rank with `root`'s contents.
    func broadcast(_ buffer: UnsafeMutableBufferPointer<Float>, root: Int) throws
    /// `root`'s bytes on every rank (the argument is ignored elsewhere).
    func broadcast(bytes: [UInt8], root: Int) throws -> [UInt8]
    /// One value per rank, element `r` from rank `r`.
    func allGather(_ value: Int64) throws -> [Int64]
    /// One value per rank, element `r` from rank `r`.
    func allGather(_ value: Double) throws -> [Double]
    /// One byte string per rank (lengths may differ), element `r` from rank `r`.
    func allGather(bytes: [UInt8]) throws -> [[UInt8]]
    /// One byte string per rank (lengths may differ) to `root`: there element `r` is rank `r`'s; an empty array on
    /// the other ranks.
    func gather(bytes: [UInt8], root: Int) throws -> [[UInt8]]
    /// Returns once every rank has entered it.
    func barrier() throws
    /// Ends the whole job with `message` on stderr (prefixed with the rank); never returns.
    func abort(message: String) -> Never
    /// Whether another thread may start and poll non-blocking all-reduces while this one computes (and makes no
    /// call meanwhile): MPI initialised with at least `MPI_THREAD_SERIALIZED`. False by default.
    var allowsBackgroundProgress: Bool { get }
}

public extension Communicator {
    /// In-place sum over all ranks of a tensor-sized float array.
    func allReduceSum(_ array: inout [Float]) throws {
        try array.withUnsafeMutableBufferPointer { try allReduceSum($0) }
    }

    /// Sum of one `Double` per rank (one collective; several values: pass an array).
    func allReduceSum(_ value: Double) throws -> Double { try allReduceSum([value])[0] }

    /// In-place element-wise sum of an `Int64` array over all ranks.
    func allReduceSum(_ values: inout [Int64]) throws { values = try allReduceSum(values) }

    /// Overwrites `array` with `root`'s values.
    func broadcast(_ array: inout [Float], root: Int) throws {
        try array.withUnsafeMutableBufferPointer { try broadcast($0, root: root) }
    }

    /// `root`'s string on every rank (the argument is ignored elsewhere).
    func broadcast(_ string: String, root: Int) throws -> String {
        String(decoding: try broadcast(bytes: Array(string.utf8), root: root), as: UTF8.self)
    }

    /// One string per rank to `root`, in rank order there; an empty array elsewhere.
    func gather(_ string: String, root: Int) throws -> [String] {
        try gather(bytes: Array(string.utf8), root: root).map { String(decoding: $0, as: UTF8.self) }
    }

    /// One string per rank, element `r` from rank `r`.
    func allGather(_ string: String) throws -> [String] {
        try allGather(bytes: Array(string.utf8)).map { String(decoding: $0, as: UTF8.self) }
    }

    /// Checks that `root` is a rank of this communicator.
    func checkRank(_ root: Int) throws {
        guard (0..<size).contains(root) else { throw DistributedError.invalidRank(root, worldSize: size) }
    }

    /// Whether this is rank 0.
    var isRoot: Bool { rank == 0 }

    var allowsBackgroundProgress: Bool { false }

    /// Whether every rank opens shared files itself: one process, or MPI ranks (parallel HDF5). False for
    /// in-process replicas, where rank 0 alone does the file I/O (the HDF5 library is not thread-safe).
    var sharesFileAccess: Bool { size == 1 || mpi != nil }
}

/// Writes `lors[rank r]: message` to stderr.
func writeRankedError(rank: Int, _ message: String) {
    FileHandle.standardError.write(Data("lors[rank \(rank)]: \(message)\n".utf8))
}

/// A request that completed when it was created.
final class CompletedRequest: CommunicationRequest {
    func test() throws -> Bool { true }
    func wait() throws {}
}

/// The world of one rank: every collective is the identity (the single-node debugging mode).
public final class LocalCommunicator: Communicator {
    public init() {}
    public var rank: Int { 0 }
    public var size: Int { 1 }
    public var mpi: MPIComm? { nil }
    public func allReduceSum(_ buffer: UnsafeMutableBufferPointer<Float>) throws {}
    public func startAllReduceSum(_ buffer: UnsafeMutableBufferPointer<Float>) throws -> CommunicationRequest { CompletedRequest() }
    public func allReduceSum(_ values: [Double]) throws -> [Double] { values }
    public func allReduceSum(_ values: [Int64]) throws -> [Int64] { values }
    public func allReduceMin(_ value: Int64) throws -> Int64 { value }
    public func allReduceMax(_ value: Int64) throws -> Int64 { value }
    public func broadcast(_ buffer: UnsafeMutableBufferPointer<Float>, root: Int) throws { try checkRank(root) }
    public func broadcast(bytes: [UInt8], root: Int) throws -> [UInt8] { try checkRank(root); return bytes }
    public func allGather(_ value: Int64) throws -> [Int64] { [value] }
    public func allGather(_ value: Double) throws -> [Double] { [value] }
    public func allGather(bytes: [UInt8]) throws -> [[UInt8]] { [bytes] }
    public func gather(bytes: [UInt8], root: Int) throws -> [[UInt8]] { try checkRank(root); return [bytes] }
    public func barrier() throws {}
    public func abort(message: String) -> Never {
        writeRankedError(rank: 0, message)
        exit(1)
    }
}
