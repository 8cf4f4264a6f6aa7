import Foundation
import Logging
import LorsTensor

/// Writes a checkpoint of the trainer's current state on demand. The checkpoint hook (LorsCheckpoint's
/// `CheckpointHook`) conforms; `StopRequestHook` finds it among `trainer.hooks` and calls it when a
/// stop request is agreed, so the preempted job leaves a checkpoint of the exact step it stopped at.
///
/// Contract for the conforming hook:
/// - collective: every rank calls it at the same step (it may do MPI/parallel-HDF5 work);
/// - writes `WORK_DIR/checkpoints/step_<step>.h5` for `trainer.state.step` and then updates `latest`,
///   each through a temporary file and a rename (wrap the renames in `StopSignals.withCriticalSection`
///   so a second SIGTERM cannot interrupt them);
/// - idempotent per step: a call for a step already saved (e.g. by the interval save, or again by the
///   end-of-run save in `afterRun`) writes nothing.
public protocol CheckpointSaving: AnyObject {
    func saveCheckpointNow(_ trainer: Trainer, reason: String) throws
}

/// Something the trainer asks, between evaluation batches, whether all ranks agreed to stop.
public protocol StopPolling: AnyObject {
    /// Collective (every rank calls it at the same point): true once any rank asked to stop; the
    /// conforming hook has then already written the checkpoint and called `requestResumableStop`.
    func stopAgreed(_ trainer: Trainer) throws -> Bool
}

/// Turns stop requests (SIGUSR1/SIGTERM via `StopSignals`, or any `isRequested` closure) into a clean,
/// resumable stop: at every step boundary (and between evaluation batches) the local flag is summed
/// over ranks with `Communicator.allReduceSum`, so all ranks see the same decision after the same step;
/// then a checkpoint is written (`CheckpointSaving`), the loop stops, and the process should exit with
/// `RunExitCode.resume` (`trainer.interruption` is set). A request after the final step is ignored
/// (the run ends normally).
public final class StopRequestHook: TrainingHook, StopPolling {
    public var name: String { "StopRequestHook" }
    /// This process's stop request, if any (a description such as "SIGTERM").
    let isRequested: () -> String?
    /// Explicit checkpoint writer; nil = the first `CheckpointSaving` hook of the trainer.
    public var checkpointer: (any CheckpointSaving)?
    /// Why the run stopped, once agreed.
    public private(set) var agreedReason: String?

    /// Stop requests from `StopSignals` (installs its handlers).
    public convenience init() {
        StopSignals.install()
        self.init(isRequested: { StopSignals.pendingSignal.map(StopSignals.name) })
    }

    public init(isRequested: @escaping () -> String?) {
        self.isRequested = isRequested
    }

    public func afterIteration(_ trainer: Trainer, _ result: StepResult) throws {
        // After the final step every rank ends anyway (same `finalStep` on all, so the collective stays matched).
        guard trainer.state.step < trainer.finalStep else { return }
        _ = try stopAgreed(trainer)
    }

    public func stopAgreed(_ trainer: Trainer) throws -> Bool {
        if agreedReason != nil { return true }
        let local = isRequested()
        let requests = try trainer.communicator.allReduceSum([Int64(local == nil ? 0 : 1)])[0]
        guard requests > 0 else { return false }
        let reason = "stop requested by \(local ?? "a signal on another rank") on \(Int(requests)) of "
            + "\(trainer.communicator.size) rank(s) after step \(trainer.state.step)"
        agreedReason = reason
        trainer.log.info("\(reason): writing a checkpoint, then exiting with code \(RunExitCode.resume) (resume me)")
        let saver = checkpointer ?? trainer.hooks.lazy.compactMap { $0 as? any CheckpointSaving }.first
        if let saver {
            try saver.saveCheckpointNow(trainer, reason: reason)
        } else {
            trainer.log.warning("no checkpoint hook in this run; nothing was saved")
        }
        trainer.requestResumableStop(reason)
        return true
    }
}

/// `--debug`: finds where a NaN/Inf first appears in each training step — the first op whose forward
/// output is non-finite (or the first non-finite parameter an op reads), else the first backward op
/// that produces a non-finite input gradient, and the first parameter whose gradient becomes
/// non-finite — and makes the trainer stop at the first non-finite step with that text.
public final class NonFiniteLocatorHook: TrainingHook {
    public var name: String { "NonFiniteLocatorHook" }
    private var forwardFinding: String?
    private var backwardFinding: String?
    private var parameterFinding: String?
    private var opIndex = 0
    private var backwardIndex = 0
    private var lastParameter: String?
    private let tape: Tape

    public init(tape: Tape = .shared) { self.tape = tape }

    /// The findings of the last step (nil if none).
    public var report: String? {
        let parts = [forwardFinding, backwardFinding, parameterFinding].compactMap { $0 }
        return parts.isEmpty ? nil : parts.joined(separator: "; ")
    }

    public func beforeRun(_ trainer: Trainer) throws {
        trainer.nonFiniteLocator = { [weak self] in self?.report }
        tape.forwardObserver = { [weak self] op, inputs, output in self?.observeForward(op, inputs, output) }
        tape.backwardObserver = { [weak self] op, inputs, grads in self?.observeBackward(op, inputs, grads) }
        let notice = "--debug: NaN/Inf location on (every op output and gradient is checked); deterministic: "
            + "counter-based randomness, fixed-order reductions"
        trainer.log.info("\(notice)")
    }

    public func beforeIteration(_ trainer: Trainer) throws { resetFindings() }

    public func afterRun(_ trainer: Trainer) throws { detach(trainer) }

    /// Removes the observers (also call it when the run throws).
    public func detach(_ trainer: Trainer? = nil) {
        tape.forwardObserver = nil
        tape.backwardObserver = nil
        trainer?.nonFiniteLocator = nil
    }

    func resetFindings() {
        forwardFinding = nil
        backwardFinding = nil
        parameterFinding = nil
        opIndex = 0
        backwardIndex = 0
        lastParameter = nil
    }

    private static func describe(_ t: Tensor) -> String {
        let values = t.toArray()
        let nan = values.filter(\.isNaN).count, inf = values.filter(\.isInfinite).count
        return "\(t.shape) with \(nan) NaN and \(inf) Inf of \(values.count)"
    }

    private static func label(_ t: Tensor) -> String? { t.name.isEmpty ? nil : t.name }

    func observeForward(_ op: String, _ inputs: [Tensor], _ output: Tensor) {
        guard tape.isRecording else { return } // evaluation forwards and backward closures are not checked
        opIndex += 1
        let parameters = inputs.compactMap(Self.label)
        defer { if let last = parameters.last { lastParameter = last } }
        guard forwardFinding == nil else { return }
        if let bad = inputs.first(where: { !$0.name.isEmpty && !Tensor.allFinite([$0]) }) {
            forwardFinding = "forward: parameter \(bad.name) is non-finite (\(Self.describe(bad))), read by op '\(op)' "
                + "(op #\(opIndex) of the step)"
            return
        }
        guard !Tensor.allFinite([output]) else { return }
        var text = "forward: first non-finite output at op '\(op)' (op #\(opIndex) of the step): \(Self.describe(output))"
        if !parameters.isEmpty { text += ", parameters \(parameters.joined(separator: ", "))" }
        else if let lastParameter { text += ", after parameter \(lastParameter)" }
        let inputState = inputs.map { Tensor.allFinite([$0]) ? "finite" : "non-finite" }
        text += "; inputs \(inputs.map { "\($0.shape)" }.joined(separator: ", ")) were \(inputState.joined(separator: ", "))"
        forwardFinding = text
    }

    func observeBackward(_ op: String, _ inputs: [Tensor], _ grads: [Tensor?]) {
        backwardIndex += 1
        for (k, g) in grads.enumerated() {
            guard let g, !Tensor.allFinite([g]) else { continue }
            let input = k < inputs.count ? inputs[k] : nil
            if backwardFinding == nil {
                var text = "backward: first non-finite gradient from op '\(op)' (backward op #\(backwardIndex)), input \(k)"
                if let input, let name = Self.label(input) { text += " = parameter \(name)" }
                backwardFinding = text + ": \(Self.describe(g))"
            }
            if parameterFinding == nil, let input, !input.hasGradFn, let name = Self.label(input) {
                parameterFinding = "first parameter with a non-finite gradient: \(name) (through op '\(op)')"
            }
        }
    }
}
