import Foundation
import LorsTensor

/// Sequential draws from one counter-based key (word `i` of the key's stream is the i-th draw),
/// for samplers that need a variable number of uniforms (rejection sampling).
public struct CounterStream {
    public let key: RandomKey
    public private(set) var position = 0

    public init(key: RandomKey) { self.key = key }

    /// A uniform in (0, 1).
    public mutating func uniform() -> Double {
        defer { position += 1 }
        return (Double(key.uniform(at: position)) * 16_777_216 + 0.5) / 16_777_217
    }

    /// A standard normal (Box–Muller).
    public mutating func normal() -> Double {
        let u1 = uniform(), u2 = uniform()
        return (-2 * Foundation.log(u1)).squareRoot() * Foundation.cos(2 * Double.pi * u2)
    }

    /// Gamma(shape, 1) by Marsaglia–Tsang (shape < 1 via the `U^(1/shape)` boost).
    public mutating func gamma(shape: Double) -> Double {
        if shape < 1 { return gamma(shape: shape + 1) * Foundation.pow(uniform(), 1 / shape) }
        let d = shape - 1.0 / 3, c = 1 / (9 * d).squareRoot()
        while true {
            var x = 0.0, v = 0.0
            repeat { x = normal(); v = 1 + c * x } while v <= 0
            v = v * v * v
            let u = uniform()
            if u < 1 - 0.0331 * x * x * x * x || Foundation.log(u) < 0.5 * x * x + d * (1 - v + Foundation.log(v)) {
                return d * v
            }
        }
    }

    /// Beta(a, b) as X / (X + Y) with X ~ Gamma(a), Y ~ Gamma(b).
    public mutating func beta(_ a: Double, _ b: Double) -> Double {
        let x = gamma(shape: a), y = gamma(shape: b)
        return x / (x + y)
    }

    /// A uniform integer in `0..<n`.
    public mutating func integer(below n: Int) -> Int { min(n - 1, Int(uniform() * Double(n))) }
}

/// Batch-level Mixup / CutMix with timm's `Mixup(mode="batch")` semantics over the GLOBAL batch: with probability
/// `mixProb` the global batch is mixed with its reverse (sample i with sample B−1−i of the global batch, one
/// decision per optimizer step), so any world size and any number of micro-batches give the same samples; CutMix is chosen with probability
/// `switchProb` when both alphas are > 0; λ ~ Beta(α, α); CutMix pastes a box of area ≈ (1 − λ)
/// (clipped at the border) and corrects λ to the pasted area. Targets become
/// `λ · onehot(y) + (1 − λ) · onehot(y_reversed)`; label smoothing is applied by the loss.
public struct BatchMixing: Sendable, Equatable {
    public var mixupAlpha: Double
    public var cutmixAlpha: Double
    public var mixProb: Double
    public var switchProb: Double

    public init(mixupAlpha: Double = 0, cutmixAlpha: Double = 0, mixProb: Double = 1, switchProb: Double = 0.5) {
        self.mixupAlpha = mixupAlpha
        self.cutmixAlpha = cutmixAlpha
        self.mixProb = mixProb
        self.switchProb = switchProb
    }

    /// Whether any mixing is configured.
    public var isEnabled: Bool { (mixupAlpha > 0 || cutmixAlpha > 0) && mixProb > 0 }

    /// What was done to one batch.
    public struct Decision: Sendable, Equatable {
        public enum Mode: Sendable, Equatable { case none, mixup, cutmix }
        public var mode: Mode
        /// Weight of the original sample in the targets.
        public var lambda: Double
        /// CutMix box `[y0, y1) × [x0, x1)`.
        public var box: (y0: Int, y1: Int, x0: Int, x1: Int)

        public static func == (a: Decision, b: Decision) -> Bool {
            a.mode == b.mode && a.lambda == b.lambda && a.box == b.box
        }
    }

    /// The decision for the global batch of optimizer step `step` (one per step, the same on every rank).
    public func decide(seed: UInt64, step: Int, height: Int, width: Int) -> Decision {
        var none = Decision(mode: .none, lambda: 1, box: (0, 0, 0, 0))
        guard isEnabled else { return none }
        var stream = CounterStream(key: RandomKey(seed: seed, purpose: "mix", stream: (UInt64(step), 0)))
        guard stream.uniform() < mixProb else { return none }
        let useCutmix: Bool
        if mixupAlpha > 0 && cutmixAlpha > 0 { useCutmix = stream.uniform() < switchProb } else { useCutmix = cutmixAlpha > 0 }
        let alpha = useCutmix ? cutmixAlpha : mixupAlpha
        let lambda = stream.beta(alpha, alpha)
        if !useCutmix {
            none.mode = .mixup
            none.lambda = lambda
            return none
        }
        // timm rand_bbox: cut = sqrt(1 − λ) of each side, centre uniform, clipped.
        let ratio = (1 - lambda).squareRoot()
        let cutH = Int(Double(height) * ratio), cutW = Int(Double(width) * ratio)
        let cy = stream.integer(below: height), cx = stream.integer(below: width)
        let y0 = max(0, min(height, cy - cutH / 2)), y1 = max(0, min(height, cy + cutH / 2))
        let x0 = max(0, min(width, cx - cutW / 2)), x1 = max(0, min(width, cx + cutW / 2))
        let corrected = 1 - Double((y1 - y0) * (x1 - x0)) / Double(height * width)
        return Decision(mode: .cutmix, lambda: corrected, box: (y0, y1, x0, x1))
    }

    /// Writes the mixed samples into `output` (`[b, C, H, W]` host floats) and returns their soft targets `[b, classes]`.
    /// Sample `k` is image `own[k]` of `images` mixed with image `partners[k]` (its global partner B−1−i; itself for
    /// the middle sample of an odd batch): Mixup `λ·x + (1−λ)·x_partner`, CutMix `x` with the box taken from the
    /// partner; targets `λ·onehot(labels[k]) + (1−λ)·onehot(partnerLabels[k])`. Label smoothing is the loss's.
    public func apply(_ decision: Decision, images: UnsafePointer<Float>, own: [Int], partners: [Int],
                      into output: UnsafeMutablePointer<Float>, channels: Int, height: Int, width: Int, labels: [Int32],
                      partnerLabels: [Int32], classes: Int) -> [Float] {
        let plane = height * width, imageSize = channels * plane
        let lambda = Float(decision.lambda)
        for k in own.indices {
            let a = images + own[k] * imageSize, b = images + partners[k] * imageSize, out = output + k * imageSize
            switch decision.mode {
            case .none:
                out.update(from: a, count: imageSize)
            case .mixup:
                for j in 0..<imageSize { out[j] = lambda * a[j] + (1 - lambda) * b[j] }
            case .cutmix:
                out.update(from: a, count: imageSize)
                let (y0, y1, x0, x1) = decision.box
                for c in 0..<channels {
                    for y in y0..<y1 {
                        for x in x0..<x1 {
                            let j = c * plane + y * width + x
                            out[j] = b[j]
                        }
                    }
                }
            }
        }
        var targets = [Float](repeating: 0, count: own.count * classes)
        for k in own.indices {
            targets[k * classes + Int(labels[k])] += lambda
            targets[k * classes + Int(partnerLabels[k])] += 1 - lambda
        }
        return targets
    }
}
