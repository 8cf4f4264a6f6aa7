import CMPI

/// A pending non-blocking MPI operation (`MPI_Request`), e.g. from `MPIComm.iAllReduce`.
///
/// Complete it with `wait()` or poll `test()`. If it is dropped while pending, `deinit` waits for it
/// (collective requests cannot be cancelled), so the buffer it uses is never left in flight.
public final class MPIRequest {
    private var request: MPI_Request?
    private let call: String
    private let context: String?

    init(request: MPI_Request?, call: String, context: String?) {
        self.request = request
        self.call = call
        self.context = context
    }

    /// True once the operation has completed (after `wait()` or a `test()` that returned true).
    public var isComplete: Bool { request == nil || request == lors_mpi_request_null() }

    /// `MPI_Test`: returns true (and releases the request) if the operation has completed.
    public func test() throws -> Bool {
        if isComplete { return true }
        var flag: Int32 = 0
        try mpiCheck(MPI_Test(&request, &flag, lors_mpi_status_ignore()), "MPI_Test (\(call))", context: context)
        if flag != 0 { request = nil }
        return flag != 0
    }

    /// `MPI_Wait`: blocks until the operation has completed.
    public func wait() throws {
        if isComplete { return }
        try mpiCheck(MPI_Wait(&request, lors_mpi_status_ignore()), "MPI_Wait (\(call))", context: context)
        request = nil
    }

    deinit {
        if !isComplete && MPIEnvironment.isInitialized {
            _ = MPI_Wait(&request, lors_mpi_status_ignore())
        }
    }
}
