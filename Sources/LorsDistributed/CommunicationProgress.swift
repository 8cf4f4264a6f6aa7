import Foundation

/// A background thread that starts queued non-blocking all-reduces and polls them (`test()`) while the calling thread
/// computes, so that MPI moves the data during backward even through long kernels that make no MPI call (OpenMPI
/// progresses non-blocking collectives and TCP/shared-memory transfers only inside MPI calls).
///
/// Only this thread calls the communicator between `enqueue` and `quiesce()`; afterwards the caller owns the returned
/// requests and may call MPI again (so `MPI_THREAD_SERIALIZED` suffices). Buckets start in enqueue order.
final class CommunicationProgress: @unchecked Sendable {
    private let communicator: Communicator
    private let pollInterval: TimeInterval
    private let condition = NSCondition()
    // Guarded by `condition`:
    private var queue: [(bucket: Int, buffer: UnsafeMutableBufferPointer<Float>)] = []
    private var quiescing = false
    private var idle = true
    private var stopping = false
    private var error: Error?
    // Owned by the thread while it is active, by the caller once `quiesce()` returned:
    private var outstanding: [(bucket: Int, request: CommunicationRequest)] = []
    private var completed: [Int] = []
    private var thread: Thread?

    /// Seconds between two polls while all-reduces are in flight: `LORS_PROGRESS_POLL_US` microseconds, else 200 µs.
    static var defaultPollInterval: TimeInterval {
        ProcessInfo.processInfo.environment["LORS_PROGRESS_POLL_US"].flatMap { Double($0) }.flatMap { $0 > 0 ? $0 / 1e6 : nil } ?? 200e-6
    }

    init(communicator: Communicator, pollInterval: TimeInterval = CommunicationProgress.defaultPollInterval) {
        self.communicator = communicator
        self.pollInterval = pollInterval
    }

    /// Queues the all-reduce of `bucket` over `buffer`; the thread starts it in queue order.
    func enqueue(bucket: Int, buffer: UnsafeMutableBufferPointer<Float>) {
        condition.lock()
        if thread == nil {
            let t = Thread { self.loop() }  // keeps this object alive until `shutdown()` ends the loop
            t.name = "lors.allreduce-progress"
            t.stackSize = 1 << 20
            thread = t
            t.start()
        }
        queue.append((bucket, buffer))
        quiescing = false
        idle = false
        condition.broadcast()
        condition.unlock()
    }

    /// Waits until every queued all-reduce has been started and the thread has stopped calling the communicator;
    /// returns the buckets that completed meanwhile and the requests still in flight (the caller completes them).
    func quiesce() throws -> (completed: [Int], inFlight: [(bucket: Int, request: CommunicationRequest)]) {
        condition.lock()
        quiescing = true
        condition.broadcast()
        while !idle { condition.wait() }
        let result = (completed, outstanding)
        completed = []
        outstanding = []
        let failure = error
        error = nil
        condition.unlock()
        if let failure { throw failure }
        return result
    }

    private func loop() {
        condition.lock()
        while true {
            if stopping { condition.unlock(); return }
            if error != nil || (queue.isEmpty && (outstanding.isEmpty || quiescing)) {
                idle = true
                condition.broadcast()
                condition.wait()
                continue
            }
            let toStart = queue
            queue = []
            condition.unlock()
            do {
                for item in toStart { outstanding.append((item.bucket, try communicator.startAllReduceSum(item.buffer))) }
                var still: [(bucket: Int, request: CommunicationRequest)] = []
                for item in outstanding {
                    if try item.request.test() { completed.append(item.bucket) } else { still.append(item) }
                }
                outstanding = still
            } catch {
                condition.lock()
                self.error = error
                continue
            }
            condition.lock()
            if queue.isEmpty && !outstanding.isEmpty && !quiescing {
                _ = condition.wait(until: Date(timeIntervalSinceNow: pollInterval))
            }
        }
    }

    /// Ends the thread (once it is idle); the owner calls it when it is discarded.
    func shutdown() {
        condition.lock()
        stopping = true
        condition.broadcast()
        condition.unlock()
    }
}
