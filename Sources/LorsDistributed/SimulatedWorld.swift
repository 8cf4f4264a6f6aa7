import Foundation
import LorsNative
import LorsTensor

/// N replicas of a data-parallel job in one process (`--simulate-ranks N`, and the tests).
///
/// `run` starts one thread per replica and passes a single baton between them, so exactly one
/// replica runs at a time, deterministically: rank 0 first, and a replica hands the baton on (to the
/// next rank, round robin, that can make progress) only when it blocks in a collective or finishes.
/// The same SPMD code that runs under `mpirun` therefore runs unchanged here, one replica after
/// another, e.g. replica 0's forward/backward (its gradient buckets are *deposited* by non-blocking
/// all-reduces), then replica 1's, ..., and the last replica's deposit completes every bucket.
///
/// Semantics, chosen to equal MPI's:
/// - collectives are matched by their per-rank sequence number (call order), and a different
///   operation or count at the same position is a `collectiveMismatch` error;
/// - a float sum is computed once, in rank order (`((x0 + x1) + x2) + ...`), and every rank receives
///   the same bits, so results do not depend on which replica finished first;
/// - a non-blocking all-reduce contributes the buffer's contents at *start*, and writes the sum when
///   that rank's `test()`/`wait()` completes it; with `checksInFlightWrites` the buffer is compared
///   with what it held at start and a write while in flight (undefined behaviour under MPI) is an error;
/// - a blocking collective while the shared autograd tape holds a recorded forward is an error (the
///   replicas share `Tape.shared`, so another replica's forward would interleave with it);
/// - when every unfinished replica waits for a collective nobody else will join, all of them throw
///   `deadlock` instead of hanging.
public final class SimulatedWorld: @unchecked Sendable {
    /// Number of replicas.
    public let size: Int
    /// Compare each in-flight all-reduce buffer with its contents at start (on by default).
    public var checksInFlightWrites = true

    /// Counters of what went through the world (for tests: "each gradient reduced exactly once").
    public struct Statistics: Sendable, Equatable {
        /// Float all-reduces (blocking and non-blocking) started by rank 0.
        public var allReduceCalls = 0
        /// Floats summed in those all-reduces (rank 0's count).
        public var allReducedElements = 0
    }
    /// Counters since the world was created (or `resetStatistics()`).
    public var statistics: Statistics {
        condition.lock(); defer { condition.unlock() }
        return stats
    }
    /// Zeros the counters.
    public func resetStatistics() {
        condition.lock(); defer { condition.unlock() }
        stats = Statistics()
    }

    enum Payload {
        case floats([Float])
        case bytes([UInt8])
        case none
    }

    final class Slot {
        let operation: String
        var contributions: [Payload]
        var arrived = 0
        var consumed = 0
        var floatSum: [Float]?
        init(operation: String, size: Int) {
            self.operation = operation
            contributions = Array(repeating: .none, count: size)
        }
    }

    let condition = NSCondition()
    private var stats = Statistics()
    private var active = 0
    private var finished: [Bool]
    private var waitingFor: [(() -> Bool)?]
    private var failure: DistributedError?
    private var slots: [Int: Slot] = [:]
    private var nextSequence: [Int]
    private var running = false

    /// A world of `size` replicas.
    public init(size: Int) {
        precondition(size >= 1, "a simulated world needs at least one replica, got \(size)")
        self.size = size
        finished = Array(repeating: false, count: size)
        waitingFor = Array(repeating: nil, count: size)
        nextSequence = Array(repeating: 0, count: size)
    }

    /// Runs `body` once per replica (SPMD), one at a time as described above; returns each rank's
    /// result in rank order. Rethrows the first error of the lowest rank that failed for a reason
    /// other than a deadlock caused by another replica's failure.
    public func run<T>(stackSize: Int = 64 << 20, _ body: @escaping (SimulatedCommunicator) throws -> T) throws -> [T] {
        condition.lock()
        precondition(!running, "SimulatedWorld.run is not reentrant")
        running = true
        active = 0
        failure = nil
        slots = [:]
        finished = Array(repeating: false, count: size)
        waitingFor = Array(repeating: nil, count: size)
        nextSequence = Array(repeating: 0, count: size)
        condition.unlock()

        let results = ResultBox<T>(size: size)
        for r in 0..<size {
            let communicator = SimulatedCommunicator(world: self, rank: r)
            let thread = Thread { [self] in
                self.condition.lock()
                while self.active != r && self.failure == nil { self.condition.wait() }
                self.condition.unlock()
                let outcome: Result<T, Error>
                if let failure = self.currentFailure() {
                    outcome = .failure(failure)
                } else {
                    outcome = Result { try body(communicator) }
                }
                results.set(r, outcome)
                self.replicaFinished(r)
            }
            thread.stackSize = stackSize
            thread.name = "lors.simulated-rank.\(r)"
            thread.start()
        }
        condition.lock()
        while finished.contains(false) { condition.wait() }
        running = false
        condition.unlock()

        let outcomes = results.all()
        // Prefer a replica's own error over the deadlocks it caused elsewhere.
        var firstDeadlock: Error?
        for outcome in outcomes {
            if case .failure(let error) = outcome {
                if case DistributedError.deadlock = error { firstDeadlock = firstDeadlock ?? error; continue }
                throw error
            }
        }
        if let firstDeadlock { throw firstDeadlock }
        return outcomes.map { try! $0.get() }
    }

    // MARK: - Scheduling (called with the lock held)

    private func currentFailure() -> DistributedError? {
        condition.lock(); defer { condition.unlock() }
        return failure
    }

    private func runnable(_ k: Int) -> Bool {
        !finished[k] && (waitingFor[k].map { $0() } ?? true)
    }

    /// The next rank after `rank` (round robin) that can run, or nil.
    private func nextRunnable(after rank: Int) -> Int? {
        for step in 1...size {
            let k = (rank + step) % size
            if runnable(k) { return k }
        }
        return nil
    }

    private func describeBlocked() -> String {
        (0..<size).filter { !finished[$0] }.map { r in
            let op = slots.sorted { $0.key < $1.key }.first { $0.value.arrived < size && !self.hasArrived(r, $0.value) }
            return "rank \(r) at collective #\(nextSequence[r] - 1)" + (op.map { " (others wait in #\($0.key) \($0.value.operation))" } ?? "")
        }.joined(separator: "; ")
    }

    private func hasArrived(_ rank: Int, _ slot: Slot) -> Bool {
        if case .none = slot.contributions[rank] { return false }
        return true
    }

    /// Blocks replica `rank` until `predicate` holds, letting other replicas run meanwhile.
    private func block(_ rank: Int, operation: String, until predicate: @escaping () -> Bool) throws {
        if predicate() { return }
        if let failure { throw failure }
        if Tape.shared.count > 0 {
            throw DistributedError.collectiveDuringRecordedForward(rank: rank, operation: operation)
        }
        waitingFor[rank] = predicate
        defer { waitingFor[rank] = nil }
        guard let next = nextRunnable(after: rank) else {
            let error = DistributedError.deadlock("every replica waits: " + describeBlocked())
            failure = error
            condition.broadcast()
            throw error
        }
        active = next
        condition.broadcast()
        while active != rank && failure == nil { condition.wait() }
        if let failure { throw failure }
        precondition(predicate(), "simulated rank \(rank) resumed before its collective completed")
    }

    private func replicaFinished(_ rank: Int) {
        condition.lock(); defer { condition.unlock() }
        finished[rank] = true
        if let next = nextRunnable(after: rank) {
            active = next
        } else if finished.contains(false) && failure == nil {
            failure = DistributedError.deadlock("rank \(rank) finished while others wait: " + describeBlocked())
        }
        condition.broadcast()
    }

    // MARK: - Collectives

    /// Deposits `payload` for `rank`'s next collective; returns its sequence number and slot.
    private func deposit(_ rank: Int, operation: String, _ payload: Payload) throws -> (Int, Slot) {
        if let failure { throw failure }
        let sequence = nextSequence[rank]
        nextSequence[rank] += 1
        let slot: Slot
        if let existing = slots[sequence] {
            guard existing.operation == operation else {
                let error = DistributedError.collectiveMismatch(
                    "collective #\(sequence): rank \(rank) calls \(operation), another rank called \(existing.operation)")
                failure = error
                condition.broadcast()
                throw error
            }
            slot = existing
        } else {
            slot = Slot(operation: operation, size: size)
            slots[sequence] = slot
        }
        if case .none = payload {
            slot.contributions[rank] = .bytes([])  // marks arrival
        } else {
            slot.contributions[rank] = payload
        }
        slot.arrived += 1
        return (sequence, slot)
    }

    private func consume(_ sequence: Int, _ slot: Slot) {
        slot.consumed += 1
        if slot.consumed == size { slots[sequence] = nil }
    }

    /// Deposits, waits for every rank, returns the slot (lock held by the caller).
    private func blockingCollective(_ rank: Int, _ operation: String, _ payload: Payload) throws -> Slot {
        let (sequence, slot) = try deposit(rank, operation: operation, payload)
        try block(rank, operation: operation) { slot.arrived == self.size }
        consume(sequence, slot)
        return slot
    }

    private func sum(_ slot: Slot) -> [Float] {
        if let s = slot.floatSum { return s }
        var total: [Float] = []
        for (r, c) in slot.contributions.enumerated() {
            guard case .floats(let values) = c else { preconditionFailure("rank \(r) deposited no floats in \(slot.operation)") }
            if r == 0 { total = values } else { for i in 0..<total.count { total[i] += values[i] } }
        }
        slot.floatSum = total
        return total
    }

    private func countAllReduce(_ rank: Int, _ count: Int) {
        if rank == 0 { stats.allReduceCalls += 1; stats.allReducedElements += count }
    }

    func allReduceSum(_ rank: Int, _ buffer: UnsafeMutableBufferPointer<Float>) throws {
        condition.lock(); defer { condition.unlock() }
        countAllReduce(rank, buffer.count)
        let slot = try blockingCollective(rank, "allReduceSum(\(buffer.count) floats)", .floats(Array(buffer)))
        let total = sum(slot)
        for i in 0..<buffer.count { buffer[i] = total[i] }
    }

    func startAllReduceSum(_ rank: Int, _ buffer: UnsafeMutableBufferPointer<Float>) throws -> CommunicationRequest {
        condition.lock(); defer { condition.unlock() }
        countAllReduce(rank, buffer.count)
        let (sequence, slot) = try deposit(rank, operation: "startAllReduceSum(\(buffer.count) floats)", .floats(Array(buffer)))
        return SimulatedRequest(world: self, rank: rank, sequence: sequence, slot: slot, buffer: buffer)
    }

    /// `test()` of a simulated request.
    func test(_ request: SimulatedRequest) throws -> Bool {
        condition.lock(); defer { condition.unlock() }
        if request.isComplete { return true }
        if let failure { throw failure }
        guard request.slot.arrived == size else { return false }
        try complete(request)
        return true
    }

    /// `wait()` of a simulated request.
    func wait(_ request: SimulatedRequest) throws {
        condition.lock(); defer { condition.unlock() }
        if request.isComplete { return }
        let slot = request.slot
        try block(request.rank, operation: slot.operation + " wait") { slot.arrived == self.size }
        try complete(request)
    }

    private func complete(_ request: SimulatedRequest) throws {
        let slot = request.slot, buffer = request.buffer
        request.isComplete = true
        consume(request.sequence, slot)
        if checksInFlightWrites, case .floats(let started) = slot.contributions[request.rank] {
            for i in 0..<buffer.count where buffer[i].bitPattern != started[i].bitPattern {
                throw DistributedError.bufferModifiedInFlight(
                    "rank \(request.rank), collective #\(request.sequence) \(slot.operation): element \(i) was \(started[i]) at start, "
                        + "\(buffer[i]) at completion")
            }
        }
        let total = sum(slot)
        for i in 0..<buffer.count { buffer[i] = total[i] }
    }

    /// Every rank's `values` (same count on every rank, checked through the operation name), in rank order.
    func allGather<T: BitwiseCopyable>(_ rank: Int, _ operation: String, values: [T]) throws -> [[T]] {
        let all = try allGather(rank, "\(operation)(\(values.count) \(T.self))", bytes: values.withUnsafeBytes { Array($0) })
        return all.map { bytes in
            bytes.withUnsafeBytes { raw in (0..<values.count).map { raw.loadUnaligned(fromByteOffset: $0 * MemoryLayout<T>.stride, as: T.self) } }
        }
    }

    func broadcast(_ rank: Int, _ buffer: UnsafeMutableBufferPointer<Float>, root: Int) throws {
        condition.lock(); defer { condition.unlock() }
        let slot = try blockingCollective(rank, "broadcast(\(buffer.count) floats, root \(root))",
                                          rank == root ? .floats(Array(buffer)) : .none)
        guard case .floats(let values) = slot.contributions[root] else { preconditionFailure("broadcast root sent nothing") }
        if rank != root { for i in 0..<buffer.count { buffer[i] = values[i] } }
    }

    func broadcast(_ rank: Int, bytes: [UInt8], root: Int) throws -> [UInt8] {
        condition.lock(); defer { condition.unlock() }
        let slot = try blockingCollective(rank, "broadcast(bytes, root \(root))", rank == root ? .bytes(bytes) : .none)
        guard case .bytes(let values) = slot.contributions[root] else { preconditionFailure("broadcast root sent nothing") }
        return values
    }

    func allGather(_ rank: Int, _ operation: String, bytes: [UInt8]) throws -> [[UInt8]] {
        condition.lock(); defer { condition.unlock() }
        let slot = try blockingCollective(rank, operation, .bytes(bytes))
        return slot.contributions.map { c in
            guard case .bytes(let b) = c else { preconditionFailure("allGather contribution is not bytes") }
            return b
        }
    }

    func barrier(_ rank: Int) throws {
        condition.lock(); defer { condition.unlock() }
        _ = try blockingCollective(rank, "barrier", .none)
    }
}

/// Thread-safe per-rank results of `SimulatedWorld.run`.
private final class ResultBox<T>: @unchecked Sendable {
    private let lock = NSLock()
    private var values: [Result<T, Error>?]
    init(size: Int) { values = Array(repeating: nil, count: size) }
    func set(_ r: Int, _ v: Result<T, Error>) { lock.lock(); values[r] = v; lock.unlock() }
    func all() -> [Result<T, Error>] { lock.lock(); defer { lock.unlock() }; return values.map { $0! } }
}

/// A non-blocking all-reduce in a `SimulatedWorld`.
final class SimulatedRequest: CommunicationRequest {
    unowned let world: SimulatedWorld
    let rank: Int
    let sequence: Int
    let slot: SimulatedWorld.Slot
    let buffer: UnsafeMutableBufferPointer<Float>
    var isComplete = false

    init(world: SimulatedWorld, rank: Int, sequence: Int, slot: SimulatedWorld.Slot, buffer: UnsafeMutableBufferPointer<Float>) {
        self.world = world
        self.rank = rank
        self.sequence = sequence
        self.slot = slot
        self.buffer = buffer
    }

    func test() throws -> Bool { try world.test(self) }
    func wait() throws { try world.wait(self) }
}

/// One replica's view of a `SimulatedWorld` (passed to the body of `SimulatedWorld.run`).
public final class SimulatedCommunicator: Communicator {
    /// The world this replica belongs to.
    public unowned let world: SimulatedWorld
    public let rank: Int
    public var size: Int { world.size }
    /// Replicas are threads of one process: no MPI communicator.
    public var mpi: MPIComm? { nil }

    init(world: SimulatedWorld, rank: Int) {
        self.world = world
        self.rank = rank
    }

    public func allReduceSum(_ buffer: UnsafeMutableBufferPointer<Float>) throws { try world.allReduceSum(rank, buffer) }
    public func startAllReduceSum(_ buffer: UnsafeMutableBufferPointer<Float>) throws -> CommunicationRequest {
        try world.startAllReduceSum(rank, buffer)
    }
    /// Summed in rank order (`((x0 + x1) + x2) + ...`), the same bits on every rank.
    public func allReduceSum(_ values: [Double]) throws -> [Double] {
        let all = try world.allGather(rank, "allReduceSum", values: values)
        return (0..<values.count).map { i in all.dropFirst().reduce(all[0][i]) { $0 + $1[i] } }
    }
    /// Summed in rank order, wrapping on overflow like MPI.
    public func allReduceSum(_ values: [Int64]) throws -> [Int64] {
        let all = try world.allGather(rank, "allReduceSum", values: values)
        return (0..<values.count).map { i in all.dropFirst().reduce(all[0][i]) { $0 &+ $1[i] } }
    }
    public func allReduceMin(_ value: Int64) throws -> Int64 {
        try world.allGather(rank, "allReduceMin", values: [value]).map { $0[0] }.min()!
    }
    public func allReduceMax(_ value: Int64) throws -> Int64 {
        try world.allGather(rank, "allReduceMax", values: [value]).map { $0[0] }.max()!
    }
    public func broadcast(_ buffer: UnsafeMutableBufferPointer<Float>, root: Int) throws {
        try checkRank(root)
        try world.broadcast(rank, buffer, root: root)
    }
    public func broadcast(bytes: [UInt8], root: Int) throws -> [UInt8] {
        try checkRank(root)
        return try world.broadcast(rank, bytes: bytes, root: root)
    }
    public func allGather(_ value: Int64) throws -> [Int64] {
        try world.allGather(rank, "allGather(Int64)", bytes: withUnsafeBytes(of: value) { Array($0) })
            .map { $0.withUnsafeBytes { $0.loadUnaligned(as: Int64.self) } }
    }
    public func allGather(_ value: Double) throws -> [Double] {
        try world.allGather(rank, "allGather(Double)", bytes: withUnsafeBytes(of: value) { Array($0) })
            .map { $0.withUnsafeBytes { $0.loadUnaligned(as: Double.self) } }
    }
    public func allGather(bytes: [UInt8]) throws -> [[UInt8]] { try world.allGather(rank, "allGather(bytes)", bytes: bytes) }
    public func gather(bytes: [UInt8], root: Int) throws -> [[UInt8]] {
        try checkRank(root)
        let all = try world.allGather(rank, "gather(bytes, root \(root))", bytes: bytes)
        return rank == root ? all : []
    }
    public func barrier() throws { try world.barrier(rank) }
    /// In a simulation, abort ends the process like MPI_Abort would end the job.
    public func abort(message: String) -> Never {
        writeRankedError(rank: rank, "(simulated) " + message)
        exit(1)
    }
}
