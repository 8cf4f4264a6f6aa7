import CMPI
import Foundation

/// The thread-support level requested from / provided by `MPI_Init_thread`.
public enum MPIThreadLevel: Int32, Sendable, Comparable {
    /// Only one thread exists.
    case single
    /// Several threads, but only the one that initialised MPI makes MPI calls.
    case funneled
    /// Several threads make MPI calls, never at the same time (what LORS uses: the gradient reducer's progress
    /// thread starts and polls all-reduces during backward while the main thread makes no MPI call).
    case serialized
    /// Any thread calls MPI at any time.
    case multiple

    init(mpiValue: Int32) {
        switch mpiValue {
        case Int32(MPI_THREAD_SINGLE): self = .single
        case Int32(MPI_THREAD_FUNNELED): self = .funneled
        case Int32(MPI_THREAD_SERIALIZED): self = .serialized
        default: self = .multiple
        }
    }

    var mpiValue: Int32 {
        switch self {
        case .single: return Int32(MPI_THREAD_SINGLE)
        case .funneled: return Int32(MPI_THREAD_FUNNELED)
        case .serialized: return Int32(MPI_THREAD_SERIALIZED)
        case .multiple: return Int32(MPI_THREAD_MULTIPLE)
        }
    }

    public static func < (lhs: MPIThreadLevel, rhs: MPIThreadLevel) -> Bool { lhs.rawValue < rhs.rawValue }
}

/// Process-wide MPI life cycle: initialise once, query the world, finalise once, abort.
///
/// Works under `mpirun`/`srun` and as a singleton (a plain process is world size 1). `initialize()` is
/// idempotent and safe to call from every test; tests must never call `finalize()` — by default an
/// `atexit` hook finalises MPI when the process exits normally (which `mpirun` requires, or it reports the
/// run as failed).
///
///     let world = try MPIEnvironment.initialize()
///     if world.rank == 0 { print("running on \(world.size) ranks") }
public enum MPIEnvironment {
    private final class State: @unchecked Sendable {
        let lock = NSRecursiveLock()  // recursive: errors thrown under it read cachedWorldRank
        var world: MPIComm?
        var initializedByUs = false
        var providedThreadLevel: MPIThreadLevel?
        var atExitRegistered = false
    }

    private static let state = State()

    /// Initialises MPI if nobody has yet (checks `MPI_Initialized`), sets `MPI_ERRORS_RETURN` on
    /// `MPI_COMM_WORLD` so every failure comes back as a code, and returns the world communicator.
    ///
    /// - Parameters:
    ///   - threadLevel: requested thread support (`MPI_Init_thread`); `.serialized` by default.
    ///   - finalizeAtExit: register an `atexit` hook that calls `MPI_Finalize` if this call initialised MPI.
    /// - Throws: `NativeError` if MPI was already finalised or a call fails.
    @discardableResult
    public static func initialize(threadLevel: MPIThreadLevel = .serialized,
                                  finalizeAtExit: Bool = true) throws -> MPIComm {
        state.lock.lock()
        defer { state.lock.unlock() }
        if let world = state.world { return world }

        var finalized: Int32 = 0
        try mpiCheck(MPI_Finalized(&finalized), "MPI_Finalized")
        if finalized != 0 {
            throw NativeError.usage("MPIEnvironment.initialize", "MPI has already been finalised in this process")
        }
        var initialized: Int32 = 0
        try mpiCheck(MPI_Initialized(&initialized), "MPI_Initialized")
        if initialized == 0 {
            var provided: Int32 = 0
            try mpiCheck(MPI_Init_thread(nil, nil, threadLevel.mpiValue, &provided), "MPI_Init_thread")
            state.initializedByUs = true
            state.providedThreadLevel = MPIThreadLevel(mpiValue: provided)
            if finalizeAtExit && !state.atExitRegistered {
                state.atExitRegistered = true
                atexit { MPIEnvironment.finalizeAtExit() }
            }
        } else {
            var provided: Int32 = 0
            try mpiCheck(MPI_Query_thread(&provided), "MPI_Query_thread")
            state.providedThreadLevel = MPIThreadLevel(mpiValue: provided)
        }
        try mpiCheck(MPI_Comm_set_errhandler(lors_mpi_comm_world(), lors_mpi_errors_return()),
                     "MPI_Comm_set_errhandler")
        let world = try MPIComm(handle: lors_mpi_comm_world(), name: "MPI_COMM_WORLD")
        state.world = world
        return world
    }

    /// True between a successful `MPI_Init*` (by anyone) and `MPI_Finalize`.
    public static var isInitialized: Bool {
        var initialized: Int32 = 0
        var finalized: Int32 = 0
        MPI_Initialized(&initialized)
        MPI_Finalized(&finalized)
        return initialized != 0 && finalized == 0
    }

    /// True if `initialize()` called `MPI_Init_thread` (so `finalize()` will finalise).
    public static var initializedByUs: Bool {
        state.lock.lock(); defer { state.lock.unlock() }
        return state.initializedByUs
    }

    /// The thread level MPI provided, once initialised.
    public static var providedThreadLevel: MPIThreadLevel? {
        state.lock.lock(); defer { state.lock.unlock() }
        return state.providedThreadLevel
    }

    /// The world communicator; initialises MPI first if needed.
    public static func world() throws -> MPIComm { try initialize() }

    /// This process's rank in `MPI_COMM_WORLD`; initialises MPI first if needed.
    public static func rank() throws -> Int { try initialize().rank }

    /// The number of processes in `MPI_COMM_WORLD`; initialises MPI first if needed.
    public static func size() throws -> Int { try initialize().size }

    /// The world rank if MPI has been initialised through this type, else nil. Never calls MPI.
    public static var cachedWorldRank: Int? {
        state.lock.lock(); defer { state.lock.unlock() }
        return state.world?.rank
    }

    /// `MPI_Get_processor_name`: usually the host name.
    public static func processorName() throws -> String {
        try initialize()
        let capacity = Int(lors_mpi_max_processor_name()) + 1
        var buffer = [CChar](repeating: 0, count: capacity)
        var length: Int32 = 0
        try mpiCheck(MPI_Get_processor_name(&buffer, &length), "MPI_Get_processor_name")
        return String(decoding: buffer.prefix(Int(length)).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Calls `MPI_Finalize` if `initialize()` initialised MPI and nobody finalised it yet; otherwise does
    /// nothing. Collective: every rank must call it. Never call it from a test.
    public static func finalize() throws {
        state.lock.lock()
        defer { state.lock.unlock() }
        guard state.initializedByUs else { return }
        var finalized: Int32 = 0
        try mpiCheck(MPI_Finalized(&finalized), "MPI_Finalized")
        if finalized == 0 {
            try mpiCheck(MPI_Finalize(), "MPI_Finalize")
        }
        state.world = nil
    }

    private static func finalizeAtExit() {
        do {
            try finalize()
        } catch {
            FileHandle.standardError.write(Data("lors: \(error)\n".utf8))
        }
    }

    /// Terminates every rank of the job: `MPI_Abort(MPI_COMM_WORLD, code)` if MPI is initialised,
    /// otherwise `exit(code)`.
    public static func abort(code: Int32) -> Never {
        if isInitialized {
            MPI_Abort(lors_mpi_comm_world(), code)
        }
        exit(code)
    }
}

/// Throws a `NativeError` carrying `MPI_Error_string`'s text unless `code` is `MPI_SUCCESS`.
@inline(__always)
func mpiCheck(_ code: Int32, _ call: @autoclosure () -> String, context: String? = nil) throws {
    if code != MPI_SUCCESS {
        throw NativeError(library: .mpi, call: call(), code: Int(code), message: mpiErrorString(code),
                          context: context)
    }
}

/// `MPI_Error_string` for `code` (works before `MPI_Init`).
func mpiErrorString(_ code: Int32) -> String {
    let capacity = Int(lors_mpi_max_error_string()) + 1
    var buffer = [CChar](repeating: 0, count: capacity)
    var length: Int32 = 0
    guard MPI_Error_string(code, &buffer, &length) == MPI_SUCCESS else { return "unknown MPI error \(code)" }
    return String(decoding: buffer.prefix(Int(length)).map { UInt8(bitPattern: $0) }, as: UTF8.self)
}
