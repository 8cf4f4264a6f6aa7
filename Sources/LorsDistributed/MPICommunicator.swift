import Foundation
import LorsNative

/// `Communicator` over an MPI communicator (`MPI_COMM_WORLD` by default).
///
/// Float sums use `MPI_Allreduce` / `MPI_Iallreduce` with `MPI_SUM`: the summation order is the MPI
/// library's (it depends on the algorithm OpenMPI picks for the rank count and message size), so
/// results are bitwise reproducible run to run for a fixed rank count and agree with other rank
/// counts (and with `SimulatedWorld`, which sums in rank order) to float rounding.
public final class MPICommunicator: Communicator {
    /// The wrapped communicator.
    public let comm: MPIComm

    /// Wraps `comm`.
    public init(_ comm: MPIComm) { self.comm = comm }

    /// Initialises MPI if needed and wraps `MPI_COMM_WORLD`.
    public convenience init() throws { self.init(try MPIEnvironment.initialize()) }

    public var rank: Int { comm.rank }
    public var size: Int { comm.size }
    public var mpi: MPIComm? { comm }
    /// True with more than one rank and MPI initialised with `MPI_THREAD_SERIALIZED` or more (the default of
    /// `MPIEnvironment.initialize`).
    public var allowsBackgroundProgress: Bool { size > 1 && (MPIEnvironment.providedThreadLevel ?? .single) >= .serialized }

    public func allReduceSum(_ buffer: UnsafeMutableBufferPointer<Float>) throws {
        try comm.allReduce(buffer, op: .sum)
    }

    public func startAllReduceSum(_ buffer: UnsafeMutableBufferPointer<Float>) throws -> CommunicationRequest {
        MPIRequestAdapter(try comm.iAllReduce(buffer, op: .sum))
    }

    public func allReduceSum(_ values: [Double]) throws -> [Double] {
        var values = values
        try comm.allReduce(&values, op: .sum)
        return values
    }

    public func allReduceSum(_ values: [Int64]) throws -> [Int64] {
        var values = values
        try comm.allReduce(&values, op: .sum)
        return values
    }

    public func allReduceMin(_ value: Int64) throws -> Int64 { try comm.allReduce(value, op: .min) }
    public func allReduceMax(_ value: Int64) throws -> Int64 { try comm.allReduce(value, op: .max) }

    public func broadcast(_ buffer: UnsafeMutableBufferPointer<Float>, root: Int) throws {
        try checkRank(root)
        try comm.broadcast(buffer, root: root)
    }

    public func broadcast(bytes: [UInt8], root: Int) throws -> [UInt8] {
        try checkRank(root)
        return try comm.broadcast(bytes: bytes, root: root)
    }

    public func allGather(_ value: Int64) throws -> [Int64] { try comm.allGather(value) }
    public func allGather(_ value: Double) throws -> [Double] { try comm.allGather(value) }

    /// One broadcast per rank: meant for small metadata (checksums, names), not tensors.
    public func allGather(bytes: [UInt8]) throws -> [[UInt8]] {
        try (0..<size).map { root in try comm.broadcast(bytes: root == rank ? bytes : [], root: root) }
    }

    /// `MPI_Gather` of the lengths, then `MPI_Gatherv`.
    public func gather(bytes: [UInt8], root: Int) throws -> [[UInt8]] {
        try checkRank(root)
        return try comm.gather(bytes: bytes, root: root)
    }

    public func barrier() throws { try comm.barrier() }

    public func abort(message: String) -> Never {
        writeRankedError(rank: rank, message)
        MPIEnvironment.abort(code: 1)
    }
}

/// `CommunicationRequest` over `MPIRequest`.
final class MPIRequestAdapter: CommunicationRequest {
    let request: MPIRequest
    init(_ request: MPIRequest) { self.request = request }
    func test() throws -> Bool { try request.test() }
    func wait() throws { try request.wait() }
}
