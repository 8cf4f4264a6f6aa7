import Foundation

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

/// The collectives the trainer needs, over MPI or in-process.
///
/// Every method is collective: all ranks call it, in the same order, with matching counts (as in MPI).
/// Sums of float buffers are the reduction the gradient reducer uses; everything else is small
/// metadata (checksums, counters, losses).
public protocol Communicator: AnyObject {
    /// This process's (or replica's) rank, `0..<size`.
    var rank: Int { get }
    /// The number of ranks.
    var size: Int { get }

    /// In-place sum over all ranks of `buffer` (same count everywhere); blocking.
    func allReduceSum(_ buffer: UnsafeMutableBufferPointer<Float>) throws
    /// Starts an in-place sum over all ranks of `buffer`; complete it with the request.
    func startAllReduceSum(_ buffer: UnsafeMutableBufferPointer<Float>) throws -> CommunicationRequest
    /// Sum of one `Double` per rank (loss logging, metric counts).
    func allReduceSum(_ value: Double) throws -> Double
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
    /// Returns once every rank has entered it.
    func barrier() throws
    /// Ends the whole job with `message` on stderr (prefixed with the rank); never returns.
    func abort(message: String) -> Never
}

public extension Communicator {
    /// In-place sum over all ranks of a tensor-sized float array.
    func allReduceSum(_ array: inout [Float]) throws {
        try array.withUnsafeMutableBufferPointer { try allReduceSum($0) }
    }

    /// Overwrites `array` with `root`'s values.
    func broadcast(_ array: inout [Float], root: Int) throws {
        try array.withUnsafeMutableBufferPointer { try broadcast($0, root: root) }
    }

    /// Checks that `root` is a rank of this communicator.
    func checkRank(_ root: Int) throws {
        guard (0..<size).contains(root) else { throw DistributedError.invalidRank(root, worldSize: size) }
    }
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
    public func allReduceSum(_ buffer: UnsafeMutableBufferPointer<Float>) throws {}
    public func startAllReduceSum(_ buffer: UnsafeMutableBufferPointer<Float>) throws -> CommunicationRequest { CompletedRequest() }
    public func allReduceSum(_ value: Double) throws -> Double { value }
    public func broadcast(_ buffer: UnsafeMutableBufferPointer<Float>, root: Int) throws { try checkRank(root) }
    public func broadcast(bytes: [UInt8], root: Int) throws -> [UInt8] { try checkRank(root); return bytes }
    public func allGather(_ value: Int64) throws -> [Int64] { [value] }
    public func allGather(_ value: Double) throws -> [Double] { [value] }
    public func allGather(bytes: [UInt8]) throws -> [[UInt8]] { [bytes] }
    public func barrier() throws {}
    public func abort(message: String) -> Never {
        writeRankedError(rank: 0, message)
        exit(1)
    }
}
