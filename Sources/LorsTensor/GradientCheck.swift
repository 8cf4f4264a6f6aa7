/// Central-difference gradient checking for any differentiable function of tensors.
///
/// The scalar under test is `L = Σ out ⊙ W` for a fixed random `W` (so every output element
/// matters), accumulated in Double on the host. Each checked input element is perturbed by
/// ±`epsilon`; the numeric derivative `(L(x+ε) − L(x−ε)) / 2ε` is compared with the tape's.
public struct GradientCheck {
    /// One mismatch (input index, flat element, analytic and numeric derivative).
    public struct Mismatch: CustomStringConvertible {
        public let input: Int
        public let element: Int
        public let analytic: Double
        public let numeric: Double
        public var description: String { "input \(input) element \(element): analytic \(analytic) vs numeric \(numeric)" }
    }

    /// Perturbation size. Float32 forward passes make ε ≈ 1e-2…1e-3 the sweet spot: the
    /// truncation error is O(ε²), the rounding error O(ulp(L)/ε).
    public var epsilon: Double = 1e-2
    /// Relative tolerance on each derivative.
    public var relativeTolerance: Double = 2e-2
    /// Absolute tolerance on each derivative.
    public var absoluteTolerance: Double = 2e-3
    /// At most this many elements per input are checked (spread evenly), to bound run time.
    public var maxElementsPerInput: Int = 64

    public init(epsilon: Double = 1e-2, relativeTolerance: Double = 2e-2, absoluteTolerance: Double = 2e-3,
                maxElementsPerInput: Int = 64) {
        self.epsilon = epsilon
        self.relativeTolerance = relativeTolerance
        self.absoluteTolerance = absoluteTolerance
        self.maxElementsPerInput = maxElementsPerInput
    }

    /// Returns every mismatch (empty when the analytic gradient is right). Inputs must be leaves
    /// with `requiresGrad` set; their `.grad` is overwritten.
    public func run(inputs: [Tensor], seed: UInt64 = 7, _ function: ([Tensor]) -> Tensor) -> [Mismatch] {
        for x in inputs { x.grad = nil }
        Tape.shared.reset()
        let out = function(inputs)
        let weights = RandomKey(seed: seed, purpose: "gradcheck.weights").uniforms(out.count, low: -1, high: 1)
        out.backward(seed: Tensor(weights, shape: out.shape))
        let analytic = inputs.map { $0.grad?.toArray() ?? [Float](repeating: 0, count: $0.count) }

        func loss() -> Double {
            let y = withoutGradients { function(inputs) }.toArray()
            var acc = 0.0
            for i in 0..<y.count { acc += Double(y[i]) * Double(weights[i]) }
            return acc
        }

        var mismatches: [Mismatch] = []
        for (index, x) in inputs.enumerated() where x.requiresGrad {
            let stride = Swift.max(1, x.count / maxElementsPerInput)
            for element in Swift.stride(from: 0, to: x.count, by: stride) {
                var host = x.toArray()
                let original = host[element]
                host[element] = original + Float(epsilon)
                x.assign(Tensor(host, shape: x.shape))
                let plus = loss()
                host[element] = original - Float(epsilon)
                x.assign(Tensor(host, shape: x.shape))
                let minus = loss()
                host[element] = original
                x.assign(Tensor(host, shape: x.shape))
                let numeric = (plus - minus) / (2 * epsilon)
                let a = Double(analytic[index][element])
                if Swift.abs(a - numeric) > absoluteTolerance + relativeTolerance * Swift.abs(numeric) {
                    mismatches.append(Mismatch(input: index, element: element, analytic: a, numeric: numeric))
                }
            }
        }
        Tape.shared.reset()
        return mismatches
    }
}
