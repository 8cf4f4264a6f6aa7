import Foundation

/// Exit codes of `lors train`, `lors-worker` and the `cluster/*.sbatch` scripts (docs/interfaces.md, "Exit codes").
public enum RunExitCode {
    /// The run finished (end of schedule or `train.max_steps`).
    public static let done: Int32 = 0
    /// An error; the message on stderr names the cause.
    public static let error: Int32 = 1
    /// Stopped by SIGUSR1/SIGTERM after writing a checkpoint: run the same command again to resume
    /// (`--resume auto`, the default). 75 = EX_TEMPFAIL of sysexits.h.
    public static let resume: Int32 = 75
    /// A second SIGTERM: exited at once (128 + SIGTERM). The last complete checkpoint is intact
    /// (checkpoints are written to a temporary file and renamed), but progress since it is lost.
    public static let killed: Int32 = 143
}

/// Stop requests by signal, for a training process (`lors train`, each `lors-worker` rank).
///
/// `install()` makes SIGUSR1 and SIGTERM set a flag instead of killing the process; the loop's
/// `StopRequestHook` all-reduces that flag at every step boundary (and between evaluation batches),
/// so all ranks stop after the same step, write a checkpoint and exit with `RunExitCode.resume`.
/// A second SIGTERM exits at once with `RunExitCode.killed`, unless the process is inside a
/// `withCriticalSection` block (a checkpoint file being renamed into place): then it exits as soon
/// as the block ends. A SIGTERM within `LORS_SIGTERM_REPEAT_MS` milliseconds (default 1000) of the
/// first counts as the same request: under Slurm one `scancel` or preemption can deliver SIGTERM to a
/// task twice (directly and through `srun`), which must not skip the checkpoint.
public enum StopSignals {
    /// Signal numbers received so far (SIGUSR1 or SIGTERM), read by `pendingSignal`.
    private static let state: UnsafeMutablePointer<Int32> = {
        // [0] last stop signal, [1] SIGTERM count, [2] critical-section depth, [3] exit requested inside it,
        // [4] repeat window in ms, [5] time of the first SIGTERM in ms (monotonic, modulo 2^31)
        let p = UnsafeMutablePointer<Int32>.allocate(capacity: 6)
        p.initialize(repeating: 0, count: 6)
        p[4] = Int32(ProcessInfo.processInfo.environment["LORS_SIGTERM_REPEAT_MS"].flatMap { Int32($0) } ?? 1000)
        return p
    }()
    private static var installed = false

    /// Installs the handlers (idempotent). Call once at start-up, before training.
    public static func install() {
        guard !installed else { return }
        installed = true
        _ = state // initialise before any handler can run
        var action = sigaction()
        action.__sigaction_handler.sa_handler = { signal in
            let s = StopSignals.statePointer
            if s[0] == 0 || signal == SIGTERM { s[0] = signal }
            if signal == SIGTERM {
                var now = timespec()
                clock_gettime(CLOCK_MONOTONIC, &now)
                let ms = Int32(truncatingIfNeeded: (now.tv_sec % 1_000_000) * 1000 + now.tv_nsec / 1_000_000)
                if s[1] == 0 { s[5] = ms }
                if s[1] == 0 || ms &- s[5] >= s[4] { s[1] += 1 }
                if s[1] >= 2 {
                    if s[2] > 0 { s[3] = 1 } else { _exit(RunExitCode.killed) }
                }
            }
        }
        sigemptyset(&action.sa_mask)
        action.sa_flags = SA_RESTART
        sigaction(SIGUSR1, &action, nil)
        sigaction(SIGTERM, &action, nil)
    }

    /// `state`, for the handler (a C function pointer cannot capture).
    static var statePointer: UnsafeMutablePointer<Int32> { state }

    /// The first stop signal received (SIGTERM wins over SIGUSR1), or nil.
    public static var pendingSignal: Int32? { state[0] == 0 ? nil : state[0] }

    /// Whether a stop was requested by signal in this process.
    public static var stopRequested: Bool { state[0] != 0 }

    /// Name of a signal number (`SIGUSR1`, `SIGTERM`).
    public static func name(_ signal: Int32) -> String {
        switch signal {
        case SIGUSR1: return "SIGUSR1"
        case SIGTERM: return "SIGTERM"
        case SIGINT: return "SIGINT"
        default: return "signal \(signal)"
        }
    }

    /// Runs `body` (e.g. the rename of a finished checkpoint file and of `latest`) so that a second
    /// SIGTERM arriving meanwhile exits only after it returns.
    public static func withCriticalSection<T>(_ body: () throws -> T) rethrows -> T {
        state[2] += 1
        defer {
            state[2] -= 1
            if state[2] == 0 && state[3] != 0 { _exit(RunExitCode.killed) }
        }
        return try body()
    }

    /// Forgets received signals (tests).
    public static func reset() {
        state[0] = 0
        state[1] = 0
        state[3] = 0
    }

    /// Simulates the arrival of `signal` without sending it (tests): same effect as the handler,
    /// except that a second SIGTERM never exits.
    public static func simulate(_ signal: Int32) {
        if state[0] == 0 || signal == SIGTERM { state[0] = signal }
        if signal == SIGTERM { state[1] += 1 }
    }
}

/// For launchers (`lors train --np N`, which runs `mpirun ... lors-worker`): runs a child process and
/// turns the launcher's signals into what reaches the ranks in time.
///
/// OpenMPI's mpirun forwards SIGUSR1 to every rank, but after a SIGTERM it kills the ranks about 1 s
/// later — too soon for a checkpoint. So while the child runs: the first SIGTERM (and every SIGUSR1)
/// to the launcher is sent to the child as SIGUSR1 (a stop request: the ranks agree, checkpoint and
/// exit with `RunExitCode.resume`); a second SIGTERM is sent on as SIGTERM (mpirun ends the ranks at
/// once). SIGINT is not handled (a terminal's Ctrl-C reaches mpirun directly anyway).
public enum SignalForwarding {
    // [0] child pid (0 before launch), [1] SIGTERMs received, [2] signals received before launch (bit 0 USR1-like)
    private static let state: UnsafeMutablePointer<Int32> = {
        let p = UnsafeMutablePointer<Int32>.allocate(capacity: 3)
        p.initialize(repeating: 0, count: 3)
        return p
    }()
    static var statePointer: UnsafeMutablePointer<Int32> { state }
    private static let lock = NSLock()

    /// What `runChild` did.
    public struct Outcome: Sendable, Equatable {
        /// The child's exit status (128 + signal number if a signal ended it).
        public var status: Int32
        /// SIGTERMs the launcher received while the child ran.
        public var terminations: Int
        public init(status: Int32, terminations: Int) {
            self.status = status
            self.terminations = terminations
        }
    }

    /// Starts `process`, forwards signals as described above until it exits, restores the previous
    /// handlers and returns the child's status. `started` is called with the child's pid once it runs
    /// and the forwarding is in place.
    @discardableResult
    public static func runChild(_ process: Process, started: ((Int32) -> Void)? = nil) throws -> Outcome {
        lock.lock()
        defer { lock.unlock() }
        state[0] = 0
        state[1] = 0
        state[2] = 0
        var action = sigaction()
        action.__sigaction_handler.sa_handler = { signal in
            let s = SignalForwarding.statePointer
            var forward = SIGUSR1
            if signal == SIGTERM {
                s[1] += 1
                if s[1] >= 2 { forward = SIGTERM }
            }
            if s[0] > 0 { kill(s[0], forward) } else { s[2] = forward }
        }
        sigemptyset(&action.sa_mask)
        action.sa_flags = SA_RESTART
        var oldTerm = sigaction(), oldUsr1 = sigaction()
        sigaction(SIGTERM, &action, &oldTerm)
        sigaction(SIGUSR1, &action, &oldUsr1)
        defer {
            sigaction(SIGTERM, &oldTerm, nil)
            sigaction(SIGUSR1, &oldUsr1, nil)
            state[0] = 0
        }
        // Handlers are reset to the default in the child on exec, so it gets SIGTERM/SIGUSR1 normally.
        try process.run()
        state[0] = process.processIdentifier
        if state[2] != 0 { kill(state[0], state[2]) }
        started?(process.processIdentifier)
        process.waitUntilExit()
        let status = process.terminationReason == .uncaughtSignal ? 128 + process.terminationStatus : process.terminationStatus
        return Outcome(status: status, terminations: Int(state[1]))
    }
}
