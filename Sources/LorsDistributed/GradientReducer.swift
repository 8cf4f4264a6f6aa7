import LorsOptim
import LorsTensor

/// Sums the gradients of every unique trainable parameter across ranks, bucket by bucket, while
/// backward is still running (PyTorch DDP's reducer, made aware of shared LORS weights).
///
/// Layout. All gradients live in one flat float buffer (`flatGradients`); each parameter's `.grad`
/// is a view into it (`Tensor(storage:shape:offset:)`), so the tape's in-place accumulation writes
/// straight into the bucket. The order is the same on every rank: parameters in *reverse*
/// registration order (backward produces gradients roughly in that order), except that parameters
/// used more than once in a forward (every shared LORS weight) come last, in their own bucket(s).
/// Consecutive parameters are grouped into buckets of at most `bucketCapBytes` (a larger parameter
/// gets a bucket of its own).
///
/// Launch. `beginBackward(synchronize: true)` installs each parameter's `gradientFinalHook`; the tape
/// fires it once per backward, after the parameter's *last* use has been back-propagated, so a
/// shared weight is final only after every layer contributed. A bucket is ready when all its
/// parameters are final; ready buckets are started (non-blocking all-reduce) strictly in bucket
/// order, so every rank starts the same collectives in the same order whatever order the hooks
/// fire in. `finish()` starts what never became ready (parameters not used by this forward keep
/// zero gradients and are still reduced) and waits for everything. Each gradient is therefore
/// reduced exactly once per step. With `overlap` false no hook is installed and `finish()` starts
/// every bucket after backward (the same collectives in the same order, so the same bits).
///
/// Progress. OpenMPI moves a non-blocking collective's data only inside MPI calls. When the
/// communicator allows it (`allowsBackgroundProgress`: MPI with `MPI_THREAD_SERIALIZED`) and
/// `backgroundProgress` is on, a progress thread starts the ready buckets and polls them every
/// ~0.2 ms while backward computes; the main thread makes no MPI call until `finish()` has quiesced
/// that thread. Otherwise every hook tests the outstanding requests itself.
///
/// Bucket size. Only a bucket whose parameters are all final can start, so one bucket holding every
/// gradient (the old 25 MiB default for a ViT-Tiny) cannot overlap anything; the default cap is
/// `defaultBucketCapBytes`. The per-element sum order does not depend on the bucket size (the MPI
/// library reduces each element over the ranks in the same order whatever the message length;
/// `MPIDataParallelTests` checks different caps give the same bits).
///
/// Numerics (docs/numerics.md): each rank's loss is the sum of its per-sample losses divided by the
/// GLOBAL batch size, and gradients are summed across ranks without any further division.
///
/// Gradient accumulation over micro-batches: call `beginBackward(synchronize: false)` before every
/// backward but the last (no hooks, gradients accumulate locally in the buckets), and
/// `beginBackward(synchronize: true)` before the last, then `finish()`.
public final class GradientReducer {
    /// A contiguous range of `flatGradients` reduced by one collective.
    public struct Bucket: Sendable {
        /// Position in launch order.
        public let index: Int
        /// Indices into `parameters` (flat order).
        public let parameterIndices: [Int]
        /// Elements of `flatGradients` this bucket covers.
        public let range: Range<Int>
        /// Whether it holds parameters used more than once per forward (shared weights).
        public let holdsSharedParameters: Bool
    }

    /// Test-only launch schedules (`@testable`): `.prematureShared` starts the shared-weight
    /// buckets together with the first bucket that becomes ready, i.e. before the shared weight's
    /// last contribution — the bug a non-sharing-aware reducer has. Tests must catch it.
    enum LaunchPolicy {
        case whenFinal
        case prematureShared
    }

    /// The communicator gradients are summed over.
    public let communicator: Communicator
    /// Unique trainable parameters in flat (reduction) order.
    public let parameters: [Tensor]
    /// Their names, same order.
    public let names: [String]
    /// Buckets in launch order.
    public let buckets: [Bucket]
    /// All gradients, `[total elements]`, in flat order.
    public let flatGradients: Tensor
    /// Offset of each parameter's gradient in `flatGradients`, same order as `parameters`.
    public let offsets: [Int]
    /// Bucket of each parameter, same order as `parameters`.
    public let bucketOfParameter: [Int]
    /// Whether each parameter was marked as used more than once, same order as `parameters`.
    public let isShared: [Bool]

    /// Default `bucketCapBytes`: 1 MiB (`dist.bucket_cap_mb` 1). A ViT-Tiny's 21.5 MB of gradients form 25 buckets
    /// that start while backward still runs; only the last one (and a LORS model's shared weights) travels after it.
    /// `lors-bench scaling`, 2 simulated nodes at 1 Gbit/s: exposed all-reduce time 21 ms of 393 (1 MiB), 46 of 389
    /// (4 MiB), 377 of 387 (25 MiB, one bucket).
    public static let defaultBucketCapBytes = 1 << 20

    /// Start buckets from the gradient-final hooks during backward (true) or all in `finish()` (false).
    public var overlap: Bool
    /// Let a progress thread start and poll the all-reduces during backward when the communicator allows it.
    public var backgroundProgress: Bool

    var launchPolicy: LaunchPolicy = .whenFinal
    private var progress: CommunicationProgress?
    private var synchronizing = false
    private var pending: [Int] = []
    private var ready: [Bool] = []
    private var started: [Bool] = []
    private var nextInOrder = 0
    private var requests: [CommunicationRequest?] = []
    /// Host view of each bucket's range of `flatGradients` for the collective: the memory itself on a
    /// host-addressable backend, otherwise a host copy pulled before the all-reduce and pushed back after it.
    private var staging: [HostStaging] = []
    private var hookError: Error?

    /// - Parameters:
    ///   - parameters: (name, tensor) of the trainable parameters in registration order, e.g.
    ///     `model.namedParameters().filter { $0.1.requiresGrad }`; a tensor listed twice is kept once.
    ///   - communicator: where gradients are summed.
    ///   - bucketCapBytes: maximum bucket size (`defaultBucketCapBytes`).
    ///   - sharedParameters: tensors used more than once per forward (see
    ///     `parametersUsedMoreThanOnce(_:forward:)`); they go to the last bucket(s). Marking is for
    ///     overlap only: correctness comes from the final hooks either way.
    ///   - overlap: start buckets during backward (see `overlap`).
    ///   - backgroundProgress: use a progress thread where the communicator allows one.
    public init(parameters: [(String, Tensor)], communicator: Communicator, bucketCapBytes: Int = GradientReducer.defaultBucketCapBytes,
                sharedParameters: [Tensor] = [], overlap: Bool = true, backgroundProgress: Bool = true) {
        precondition(bucketCapBytes >= 4, "bucket cap \(bucketCapBytes) bytes is below one float")
        var seen = Set<ObjectIdentifier>()
        let unique = parameters.filter { seen.insert(ObjectIdentifier($0.1)).inserted }
        let sharedIDs = Set(sharedParameters.map(ObjectIdentifier.init))
        let reversed = Array(unique.reversed())
        let ordered = reversed.filter { !sharedIDs.contains(ObjectIdentifier($0.1)) }
            + reversed.filter { sharedIDs.contains(ObjectIdentifier($0.1)) }
        self.communicator = communicator
        self.overlap = overlap
        self.backgroundProgress = backgroundProgress
        self.parameters = ordered.map(\.1)
        self.names = ordered.map(\.0)
        let shared = ordered.map { sharedIDs.contains(ObjectIdentifier($0.1)) }
        self.isShared = shared

        let capElements = bucketCapBytes / MemoryLayout<Float>.stride
        var offsets: [Int] = [], bucketOf: [Int] = [], buckets: [Bucket] = []
        var offset = 0, bucketStart = 0, members: [Int] = []
        func close() {
            guard !members.isEmpty else { return }
            buckets.append(Bucket(index: buckets.count, parameterIndices: members, range: bucketStart..<offset,
                                  holdsSharedParameters: shared[members[0]]))
            members = []
            bucketStart = offset
        }
        for (i, p) in ordered.map(\.1).enumerated() {
            let startsShared = i > 0 && shared[i] && !shared[i - 1]
            if !members.isEmpty && (offset - bucketStart + p.count > capElements || startsShared) { close() }
            offsets.append(offset)
            bucketOf.append(buckets.count)
            members.append(i)
            offset += p.count
        }
        close()
        self.offsets = offsets
        self.bucketOfParameter = bucketOf
        self.buckets = buckets
        flatGradients = Tensor.zeros([offset])
        for (i, p) in self.parameters.enumerated() {
            let view = gradientView(i)
            if let g = p.grad { view.assign(g) }
            p.grad = view
        }
        requests = Array(repeating: nil, count: buckets.count)
        staging = buckets.map { flatGradients.hostStaging(elements: $0.range) }
    }

    deinit { progress?.shutdown() }

    /// Total number of gradient elements (each shared tensor once).
    public var elementCount: Int { flatGradients.count }

    private func gradientView(_ i: Int) -> Tensor {
        Tensor(storage: flatGradients.storage, shape: parameters[i].shape, offset: flatGradients.offset + offsets[i])
    }

    /// Re-attaches gradient views where someone replaced or dropped `.grad` (e.g. `zeroGrad(setToNone: true)`).
    public func attachGradientViews() {
        for (i, p) in parameters.enumerated() {
            if let g = p.grad, g.storage === flatGradients.storage, g.offset == flatGradients.offset + offsets[i] { continue }
            let view = gradientView(i)
            if let g = p.grad { view.assign(g) } else { view.fill(0) }
            p.grad = view
        }
    }

    /// Zeros every gradient (the whole flat buffer) before a new step's first backward.
    public func zeroGradients() {
        attachGradientViews()
        flatGradients.fill(0)
    }

    /// Arms (or, with `synchronize: false`, disarms) the reduction for the next backward.
    public func beginBackward(synchronize: Bool = true) {
        attachGradientViews()
        precondition(!requests.contains { $0 != nil }, "GradientReducer.beginBackward while buckets are in flight: call finish() first")
        synchronizing = synchronize
        hookError = nil
        nextInOrder = 0
        pending = buckets.map { $0.parameterIndices.count }
        ready = Array(repeating: false, count: buckets.count)
        started = Array(repeating: false, count: buckets.count)
        for (i, p) in parameters.enumerated() {
            if synchronize && overlap {
                let bucket = bucketOfParameter[i]
                p.gradientFinalHook = { [unowned self] _ in self.parameterFinal(bucket: bucket) }
            } else {
                p.gradientFinalHook = nil
            }
        }
    }

    private func parameterFinal(bucket: Int) {
        guard synchronizing, hookError == nil else { return }
        pending[bucket] -= 1
        if pending[bucket] == 0 { ready[bucket] = true }
        do {
            try launchReadyBuckets()
            if progress == nil { try driveProgress() }
        } catch {
            hookError = error
        }
    }

    private func launchReadyBuckets() throws {
        while nextInOrder < buckets.count && ready[nextInOrder] {
            if launchPolicy == .prematureShared {
                for b in buckets.indices where buckets[b].holdsSharedParameters && !started[b] { try start(b) }
            }
            if !started[nextInOrder] { try start(nextInOrder) }
            nextInOrder += 1
        }
    }

    private func start(_ b: Int) throws {
        started[b] = true
        staging[b].pull()
        if synchronizing && overlap && backgroundProgress && communicator.allowsBackgroundProgress {
            if progress == nil { progress = CommunicationProgress(communicator: communicator) }
            progress!.enqueue(bucket: b, buffer: staging[b].buffer)
        } else {
            requests[b] = try communicator.startAllReduceSum(staging[b].buffer)
        }
    }

    /// Takes the buckets back from the progress thread (after it stopped calling the communicator).
    private func quiesceProgress() throws {
        guard let progress else { return }
        let (completed, inFlight) = try progress.quiesce()
        for b in completed { staging[b].push() }
        for item in inFlight { requests[item.bucket] = item.request }
    }

    /// Tests outstanding requests (MPI makes progress on non-blocking collectives inside MPI calls).
    private func driveProgress() throws {
        for b in requests.indices {
            if let r = requests[b], try r.test() {
                requests[b] = nil
                staging[b].push()
            }
        }
    }

    /// Starts every bucket not started yet (in order) and waits for all; afterwards every rank holds
    /// the same summed gradients. Rethrows an error raised inside a hook.
    public func finish() throws {
        defer {
            synchronizing = false
            for p in parameters { p.gradientFinalHook = nil }
        }
        if let hookError {
            _ = try? quiesceProgress()
            throw hookError
        }
        guard synchronizing else { return }
        try quiesceProgress()
        synchronizing = false  // the remaining buckets start here, on this thread
        for b in buckets.indices where !started[b] { try start(b) }
        nextInOrder = buckets.count
        for b in requests.indices {
            guard let request = requests[b] else { continue }
            try request.wait()
            requests[b] = nil
            staging[b].push()
        }
    }

    /// Clips the reduced gradients by their global L2 norm (`LorsOptim.clipGradientNorm`) over the
    /// unique parameters in flat order; every rank holds the same reduced gradients, so every rank
    /// computes the same norm bit for bit. Returns the norm before clipping.
    @discardableResult
    public func clipGradientNorm(maxNorm: Double) -> Double {
        LorsOptim.clipGradientNorm(parameters: parameters, maxNorm: maxNorm)
    }

    /// Runs `forward` with the tape recording and returns the parameters (in `parameters`' order)
    /// that it used more than once — the shared weights — then clears the tape (a dry run).
    public static func parametersUsedMoreThanOnce(_ parameters: [Tensor], forward: () throws -> Void) rethrows -> [Tensor] {
        Tape.shared.reset()
        defer { Tape.shared.reset() }
        try forward()
        let uses = Tape.shared.leafUseCounts()
        var seen = Set<ObjectIdentifier>()
        return parameters.filter { seen.insert(ObjectIdentifier($0)).inserted && (uses[ObjectIdentifier($0)] ?? 0) > 1 }
    }
}
