/// Reverse-mode automatic differentiation on a tape.
///
/// Each recorded op appends a node holding its inputs, its output and a backward closure that
/// maps the output gradient to one gradient per input. `backward()` walks the tape in reverse,
/// accumulates into `.grad` of leaves that require gradients, and calls each leaf's
/// `gradientFinalHook` exactly once, right after its last use on the tape has been processed
/// — a shared LORS weight used by every layer is final only after the first layer (the last
/// one processed in reverse) contributed. Backward closures run with recording off.
public final class Tape: @unchecked Sendable {
    /// One recorded op.
    final class Node {
        let op: String
        let inputs: [Tensor]
        var output: Tensor?
        let backward: (Tensor) -> [Tensor?]
        init(op: String, inputs: [Tensor], output: Tensor, backward: @escaping (Tensor) -> [Tensor?]) {
            self.op = op
            self.inputs = inputs
            self.output = output
            self.backward = backward
        }
    }

    /// The process-wide tape (ranks simulated in-process run one after another).
    public static let shared = Tape()

    var nodes: [Node?] = []
    /// Whether ops record (see `withoutGradients`).
    public internal(set) var isRecording = true
    /// Called after each backward node with the op name and its input gradients (debug mode uses
    /// it to locate the first NaN/Inf).
    public var gradientObserver: ((String, [Tensor?]) -> Void)?
    /// Like `gradientObserver`, with the op's inputs too (debug mode names the parameter whose
    /// gradient first becomes non-finite).
    public var backwardObserver: ((_ op: String, _ inputs: [Tensor], _ inputGradients: [Tensor?]) -> Void)?
    /// Called by every op that goes through `record` (recording or not) with its name, inputs and
    /// freshly computed output (debug mode finds the first op whose output is NaN/Inf).
    public var forwardObserver: ((_ op: String, _ inputs: [Tensor], _ output: Tensor) -> Void)?

    /// Number of ops currently recorded.
    public var count: Int { nodes.count }

    /// Drops every recorded op (e.g. after an evaluation forward).
    public func reset() { nodes.removeAll(keepingCapacity: true) }

    /// How many recorded ops use each leaf that requires gradients (a shared LORS weight used by
    /// every layer counts once per layer). The distributed reducer's dry run uses it to find the
    /// parameters whose gradients become final only at the end of backward.
    public func leafUseCounts() -> [ObjectIdentifier: Int] {
        var counts: [ObjectIdentifier: Int] = [:]
        for case let node? in nodes {
            for input in node.inputs where input.requiresGrad && !input.hasGradFn {
                counts[ObjectIdentifier(input), default: 0] += 1
            }
        }
        return counts
    }

    /// Records `output = op(inputs)` if any input requires gradients; returns `output`.
    @discardableResult
    public func record(_ op: String, inputs: [Tensor], output: Tensor, backward: @escaping (Tensor) -> [Tensor?]) -> Tensor {
        forwardObserver?(op, inputs, output)
        guard isRecording, inputs.contains(where: { $0.requiresGrad }) else { return output }
        output.requiresGrad = true
        output.hasGradFn = true
        nodes.append(Node(op: op, inputs: inputs, output: output, backward: backward))
        return output
    }

    /// Runs `body` without recording ops.
    public func withoutGradients<T>(_ body: () throws -> T) rethrows -> T {
        let previous = isRecording
        isRecording = false
        defer { isRecording = previous }
        return try body()
    }

    /// Back-propagates from `root` (seeded with `seed`, or ones) and clears the tape.
    public func backward(from root: Tensor, seed: Tensor? = nil) {
        precondition(root.requiresGrad, "backward() on a tensor that does not require gradients")
        let g = seed ?? Tensor(repeating: 1, shape: root.shape)
        precondition(g.shape == root.shape, "backward seed \(g.shape) vs root \(root.shape)")
        if !root.hasGradFn {
            accumulateLeaf(root, g)
            root.gradientFinalHook?(root)
            reset()
            return
        }
        root.pendingGrad = g

        // Count how many recorded uses each leaf has, so its hook fires after the last one.
        var remaining = leafUseCounts()

        let previous = isRecording
        isRecording = false
        defer { isRecording = previous }
        var i = nodes.count - 1
        while i >= 0 {
            guard let node = nodes[i], let output = node.output else { i -= 1; continue }
            nodes[i] = nil
            let gradOut = output.pendingGrad
            output.pendingGrad = nil
            var inputGrads: [Tensor?] = []
            if let gradOut {
                inputGrads = node.backward(gradOut)
                precondition(inputGrads.count == node.inputs.count, "op \(node.op) returned \(inputGrads.count) gradients for \(node.inputs.count) inputs")
                gradientObserver?(node.op, inputGrads)
                backwardObserver?(node.op, node.inputs, inputGrads)
            }
            for (k, input) in node.inputs.enumerated() where input.requiresGrad {
                let gi = k < inputGrads.count ? inputGrads[k] : nil
                if let gi {
                    precondition(gi.count == input.count, "op \(node.op): gradient \(gi.shape) for input \(input.shape)")
                    if input.hasGradFn {
                        let shaped = gi.shape == input.shape ? gi : gi.reshaped(input.shape)
                        if let pending = input.pendingGrad {
                            // A first gradient may alias another tensor's (identity backward): never
                            // accumulate into it in place; the sum is fresh memory we own.
                            if input.pendingGradOwned {
                                pending.addInPlace(shaped)
                            } else {
                                input.pendingGrad = pending.addingDetached(shaped)
                                input.pendingGradOwned = true
                            }
                        } else {
                            input.pendingGrad = shaped
                            input.pendingGradOwned = false
                        }
                    } else {
                        accumulateLeaf(input, gi)
                    }
                }
                if !input.hasGradFn {
                    let id = ObjectIdentifier(input)
                    let left = (remaining[id] ?? 1) - 1
                    remaining[id] = left
                    if left == 0 { input.gradientFinalHook?(input) }
                }
            }
            i -= 1
        }
        reset()
    }

    private func accumulateLeaf(_ leaf: Tensor, _ g: Tensor) {
        if let existing = leaf.grad {
            existing.addInPlace(g)
        } else {
            let copy = Tensor(uninitialized: leaf.shape)
            copy.assign(g)
            leaf.grad = copy
        }
    }
}

public extension Tensor {
    /// Back-propagates from this tensor (a scalar loss unless `seed` is given).
    func backward(seed: Tensor? = nil) { Tape.shared.backward(from: self, seed: seed) }
}

/// Runs `body` with gradient recording off (evaluation, optimizer updates).
public func withoutGradients<T>(_ body: () throws -> T) rethrows -> T {
    try Tape.shared.withoutGradients(body)
}
