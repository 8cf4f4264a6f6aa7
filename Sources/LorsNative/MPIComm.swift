import CMPI
import Foundation

/// A value type MPI can send and reduce, with its MPI datatype.
public protocol MPIScalar: BitwiseCopyable {
    /// The MPI datatype describing one value (`MPI_FLOAT`, ...).
    static var mpiDatatype: MPI_Datatype { get }
}

extension Float: MPIScalar { public static var mpiDatatype: MPI_Datatype { lors_mpi_float() } }
extension Double: MPIScalar { public static var mpiDatatype: MPI_Datatype { lors_mpi_double() } }
extension Int64: MPIScalar { public static var mpiDatatype: MPI_Datatype { lors_mpi_long_long() } }
extension Int: MPIScalar { public static var mpiDatatype: MPI_Datatype { lors_mpi_int64_t() } }
extension Int32: MPIScalar { public static var mpiDatatype: MPI_Datatype { lors_mpi_int() } }
extension UInt8: MPIScalar { public static var mpiDatatype: MPI_Datatype { lors_mpi_unsigned_char() } }

/// A reduction operation for `allReduce`.
public enum MPIReduceOp: String, Sendable {
    case sum, max, min, product

    var handle: MPI_Op {
        switch self {
        case .sum: return lors_mpi_sum()
        case .max: return lors_mpi_max()
        case .min: return lors_mpi_min()
        case .product: return lors_mpi_prod()
        }
    }
}

/// A communicator (`MPI_Comm`) with checked collectives.
///
/// Every method is collective unless noted: all ranks of the communicator call it, in the same order,
/// with matching counts. Obtain the world with `MPIEnvironment.initialize()`.
public struct MPIComm: @unchecked Sendable {
    /// The raw handle, for calls this wrapper does not cover (e.g. `H5Pset_fapl_mpio`).
    public let handle: MPI_Comm
    /// This process's rank in the communicator, 0..<size.
    public let rank: Int
    /// The number of processes in the communicator.
    public let size: Int
    /// A name for error messages (`MPI_COMM_WORLD`).
    public let name: String

    /// Wraps an existing communicator, querying its rank and size.
    public init(handle: MPI_Comm, name: String = "communicator") throws {
        var rank: Int32 = 0
        var size: Int32 = 0
        try mpiCheck(MPI_Comm_rank(handle, &rank), "MPI_Comm_rank", context: name)
        try mpiCheck(MPI_Comm_size(handle, &size), "MPI_Comm_size", context: name)
        self.handle = handle
        self.rank = Int(rank)
        self.size = Int(size)
        self.name = name
    }

    /// MPI counts are `Int32`; longer buffers are processed in chunks of this many elements.
    static let maximumChunk = Int(Int32.max)

    // MARK: - Barrier

    /// `MPI_Barrier`: returns once every rank has entered it.
    public func barrier() throws {
        try mpiCheck(MPI_Barrier(handle), "MPI_Barrier", context: name)
    }

    // MARK: - All-reduce

    /// In-place `MPI_Allreduce` of `count` values at `buffer`: afterwards every rank holds the reduction.
    public func allReduce<T: MPIScalar>(_ buffer: UnsafeMutablePointer<T>, count: Int, op: MPIReduceOp = .sum) throws {
        guard count >= 0 else { throw NativeError.usage("MPI_Allreduce", "negative count \(count)", context: name) }
        var offset = 0
        while offset < count {
            let chunk = Swift.min(count - offset, MPIComm.maximumChunk)
            try mpiCheck(MPI_Allreduce(lors_mpi_in_place(), buffer + offset, Int32(chunk), T.mpiDatatype, op.handle, handle),
                         "MPI_Allreduce", context: name)
            offset += chunk
        }
    }

    /// In-place `MPI_Allreduce` of a buffer.
    public func allReduce<T: MPIScalar>(_ buffer: UnsafeMutableBufferPointer<T>, op: MPIReduceOp = .sum) throws {
        guard let base = buffer.baseAddress, buffer.count > 0 else { return try allReduceEmpty(T.self) }
        try allReduce(base, count: buffer.count, op: op)
    }

    /// In-place `MPI_Allreduce` of an array (same count on every rank).
    public func allReduce<T: MPIScalar>(_ array: inout [T], op: MPIReduceOp = .sum) throws {
        try array.withUnsafeMutableBufferPointer { try allReduce($0, op: op) }
    }

    /// `MPI_Allreduce` of one value; returns the reduction.
    public func allReduce<T: MPIScalar>(_ value: T, op: MPIReduceOp = .sum) throws -> T {
        var value = value
        try allReduce(&value, count: 1, op: op)
        return value
    }

    private func allReduceEmpty<T: MPIScalar>(_ type: T.Type) throws {
        // A zero-count all-reduce is legal; still call it so every rank takes part in the same collectives.
        var dummy = [T]()
        dummy.reserveCapacity(1)
        try mpiCheck(MPI_Allreduce(lors_mpi_in_place(), &dummy, 0, T.mpiDatatype, MPIReduceOp.sum.handle, handle),
                     "MPI_Allreduce", context: name)
    }

    /// Non-blocking in-place `MPI_Iallreduce`. The buffer must stay alive and untouched until the
    /// returned request completes (`wait()` or `test()` returning true).
    public func iAllReduce<T: MPIScalar>(_ buffer: UnsafeMutableBufferPointer<T>, op: MPIReduceOp = .sum) throws -> MPIRequest {
        guard buffer.count <= MPIComm.maximumChunk else {
            throw NativeError.usage("MPI_Iallreduce", "\(buffer.count) elements exceed the Int32 count limit", context: name)
        }
        var request: MPI_Request? = lors_mpi_request_null()
        let pointer = UnsafeMutableRawPointer(buffer.baseAddress)
        try mpiCheck(MPI_Iallreduce(lors_mpi_in_place(), pointer, Int32(buffer.count), T.mpiDatatype, op.handle, handle, &request),
                     "MPI_Iallreduce", context: name)
        return MPIRequest(request: request, call: "MPI_Iallreduce", context: name)
    }

    // MARK: - Broadcast

    /// `MPI_Bcast` of `buffer` from `root` (same count on every rank).
    public func broadcast<T: MPIScalar>(_ buffer: UnsafeMutableBufferPointer<T>, root: Int = 0) throws {
        try checkRoot(root, "MPI_Bcast")
        guard let base = buffer.baseAddress, buffer.count > 0 else { return }
        var offset = 0
        while offset < buffer.count {
            let chunk = Swift.min(buffer.count - offset, MPIComm.maximumChunk)
            try mpiCheck(MPI_Bcast(base + offset, Int32(chunk), T.mpiDatatype, Int32(root), handle), "MPI_Bcast", context: name)
            offset += chunk
        }
    }

    /// `MPI_Bcast` of an array from `root` (same count on every rank).
    public func broadcast<T: MPIScalar>(_ array: inout [T], root: Int = 0) throws {
        try array.withUnsafeMutableBufferPointer { try broadcast($0, root: root) }
    }

    /// Broadcasts a variable-length byte array from `root`; every rank returns root's bytes (the argument is
    /// ignored on other ranks).
    public func broadcast(bytes: [UInt8], root: Int = 0) throws -> [UInt8] {
        try checkRoot(root, "MPI_Bcast")
        var length = [Int64(rank == root ? bytes.count : 0)]
        try broadcast(&length, root: root)
        var result = rank == root ? bytes : [UInt8](repeating: 0, count: Int(length[0]))
        try broadcast(&result, root: root)
        return result
    }

    /// Broadcasts `Data` from `root`; every rank returns root's data.
    public func broadcast(data: Data, root: Int = 0) throws -> Data {
        Data(try broadcast(bytes: [UInt8](data), root: root))
    }

    /// Broadcasts a string from `root`; every rank returns root's string.
    public func broadcast(_ string: String, root: Int = 0) throws -> String {
        String(decoding: try broadcast(bytes: Array(string.utf8), root: root), as: UTF8.self)
    }

    /// Broadcasts one value from `root`.
    public func broadcast<T: MPIScalar>(_ value: T, root: Int = 0) throws -> T {
        var array = [value]
        try broadcast(&array, root: root)
        return array[0]
    }

    // MARK: - Gather

    /// `MPI_Allgather` of one value per rank: element `r` of the result is rank `r`'s value.
    public func allGather<T: MPIScalar>(_ value: T) throws -> [T] {
        var send = value
        var result = [T](repeating: value, count: size)
        try result.withUnsafeMutableBufferPointer { out in
            try mpiCheck(MPI_Allgather(&send, 1, T.mpiDatatype, out.baseAddress, 1, T.mpiDatatype, handle),
                         "MPI_Allgather", context: name)
        }
        return result
    }

    /// Gathers one string per rank to `root`. Root returns all strings in rank order; other ranks return an empty
    /// array.
    public func gather(_ string: String, root: Int = 0) throws -> [String] {
        try gather(bytes: Array(string.utf8), root: root).map { String(decoding: $0, as: UTF8.self) }
    }

    /// Gathers one byte string per rank (lengths may differ) to `root` (`MPI_Gather` of lengths, then
    /// `MPI_Gatherv`). Root returns them in rank order; other ranks return an empty array.
    public func gather(bytes: [UInt8], root: Int = 0) throws -> [[UInt8]] {
        try checkRoot(root, "MPI_Gatherv")
        var bytes = bytes
        guard bytes.count <= MPIComm.maximumChunk else {
            throw NativeError.usage("MPI_Gatherv", "\(bytes.count) bytes are too many for one rank", context: name)
        }
        var length = Int32(bytes.count)
        var lengths = [Int32](repeating: 0, count: size)
        try mpiCheck(MPI_Gather(&length, 1, lors_mpi_int(), &lengths, 1, lors_mpi_int(), Int32(root), handle),
                     "MPI_Gather", context: name)
        var displacements = [Int32](repeating: 0, count: size)
        var total = 0
        if rank == root {
            for r in 0..<size {
                displacements[r] = Int32(total)
                total += Int(lengths[r])
                guard total <= MPIComm.maximumChunk else {
                    throw NativeError.usage("MPI_Gatherv", "gathered bytes exceed the Int32 count limit", context: name)
                }
            }
        }
        var received = [UInt8](repeating: 0, count: Swift.max(total, 1))
        bytes.reserveCapacity(1)
        try mpiCheck(MPI_Gatherv(&bytes, length, lors_mpi_unsigned_char(), &received, &lengths, &displacements,
                                 lors_mpi_unsigned_char(), Int32(root), handle),
                     "MPI_Gatherv", context: name)
        guard rank == root else { return [] }
        return (0..<size).map { r in
            let start = Int(displacements[r])
            return Array(received[start..<(start + Int(lengths[r]))])
        }
    }

    private func checkRoot(_ root: Int, _ call: String) throws {
        guard (0..<size).contains(root) else {
            throw NativeError.usage(call, "root \(root) is not a rank of a communicator of size \(size)", context: name)
        }
    }
}
