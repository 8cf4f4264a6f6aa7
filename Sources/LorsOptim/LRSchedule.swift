import Foundation

/// Learning rate as a pure function of the global iteration and the epoch (no state, so a
/// resumed run needs only its step), with mmcv's `LrUpdaterHook` semantics.
///
/// `lr(it, e) = regular(it, e) × warmup(it)` where, with `it` the 0-based global iteration and
/// `e` the 0-based epoch:
/// - `warmup(it) = warmupRatio + (1 − warmupRatio) × it / warmupIterations` while
///   `it < warmupIterations`, else 1 (mmcv's linear warmup, by iteration);
/// - `regular` by policy:
///   - `.constant`: `base`;
///   - `.step(milestones, gamma)`: `base × gamma^(number of milestones m with e ≥ m)` — with
///     [8, 11], epochs 0–7 run at base, 8–10 at 0.1×, 11 at 0.01× (docs/interfaces.md);
///   - `.cosine(minLRRatio, progress)`: mmcv's `CosineAnnealingLrUpdaterHook` with
///     `min_lr_ratio`: `target + ½ (base − target)(1 + cos(π t / T))`, `target = base × minLRRatio`,
///     where `t / T` is `it / (epochs × iterationsPerEpoch)` for `.iteration` (mmcv
///     `by_epoch=False`; the warmup iterations are part of `T` and the warmup factor multiplies the
///     cosine value, as in mmcv) or `e / epochs` for `.epoch` (mmcv `by_epoch=True`). `t / T` is
///     clamped to [0, 1], so the rate stays at `target` past the end of the schedule.
public struct LRSchedule: Sendable, Equatable {
    /// What `t / T` counts for the cosine policy.
    public enum CosineProgress: String, Sendable, Equatable {
        /// Per iteration over all `epochs × iterationsPerEpoch` iterations (DeiT-style).
        case iteration
        /// Per epoch: constant within an epoch.
        case epoch
    }

    /// The decay after (or besides) warmup.
    public enum Policy: Sendable, Equatable {
        case constant
        /// Multiply by `gamma` at each milestone epoch (0-based epoch ≥ milestone).
        case step(milestones: [Int], gamma: Double)
        /// Cosine annealing down to `base × minLRRatio`.
        case cosine(minLRRatio: Double, progress: CosineProgress)
    }

    /// Named step schedules of mmdetection.
    public enum Preset: String, Sendable, CaseIterable {
        /// 12 epochs, ×0.1 at epochs 8 and 11.
        case oneX = "1x"
        /// 36 epochs, ×0.1 at epochs 24 and 33.
        case threeX = "3x"

        public var epochs: Int { self == .oneX ? 12 : 36 }
        public var milestones: [Int] { self == .oneX ? [8, 11] : [24, 33] }
    }

    /// `optimizer.lr`: the rate after warmup and before any decay.
    public var baseLearningRate: Double
    public var policy: Policy
    /// Length of the schedule in epochs (cosine's end).
    public var epochs: Int
    /// Iterations (optimizer steps) per epoch.
    public var iterationsPerEpoch: Int
    /// Linear warmup length in iterations (0: none).
    public var warmupIterations: Int
    /// Warmup starting factor (mmcv's `warmup_ratio`).
    public var warmupRatio: Double

    public init(baseLearningRate: Double, policy: Policy, epochs: Int, iterationsPerEpoch: Int,
                warmupIterations: Int = 0, warmupRatio: Double = 0.001) {
        precondition(epochs > 0 && iterationsPerEpoch > 0, "LRSchedule: epochs \(epochs) and iterations per epoch \(iterationsPerEpoch) must be > 0")
        precondition(warmupIterations >= 0, "LRSchedule: warmup iterations \(warmupIterations) < 0")
        precondition(warmupIterations == 0 || (warmupRatio > 0 && warmupRatio <= 1), "LRSchedule: warmup ratio \(warmupRatio) outside (0, 1]")
        self.baseLearningRate = baseLearningRate
        self.policy = policy
        self.epochs = epochs
        self.iterationsPerEpoch = iterationsPerEpoch
        self.warmupIterations = warmupIterations
        self.warmupRatio = warmupRatio
    }

    /// A step schedule from a preset (`gamma` 0.1), warmup 500 iterations at ratio 0.001 unless given.
    public static func preset(_ preset: Preset, baseLearningRate: Double, iterationsPerEpoch: Int,
                              warmupIterations: Int = 500, warmupRatio: Double = 0.001) -> LRSchedule {
        LRSchedule(baseLearningRate: baseLearningRate, policy: .step(milestones: preset.milestones, gamma: 0.1),
                   epochs: preset.epochs, iterationsPerEpoch: iterationsPerEpoch,
                   warmupIterations: warmupIterations, warmupRatio: warmupRatio)
    }

    /// Total iterations of the schedule.
    public var totalIterations: Int { epochs * iterationsPerEpoch }

    /// The rate at 0-based global `iteration` inside 0-based `epoch`.
    public func learningRate(iteration: Int, epoch: Int) -> Double {
        regularLearningRate(iteration: iteration, epoch: epoch) * warmupFactor(iteration: iteration)
    }

    /// The rate at 0-based global `iteration`, with `epoch = iteration / iterationsPerEpoch`.
    public func learningRate(iteration: Int) -> Double {
        learningRate(iteration: iteration, epoch: iteration / iterationsPerEpoch)
    }

    /// The linear warmup factor (1 once `iteration ≥ warmupIterations`).
    public func warmupFactor(iteration: Int) -> Double {
        guard iteration < warmupIterations else { return 1 }
        return warmupRatio + (1 - warmupRatio) * Double(iteration) / Double(warmupIterations)
    }

    /// The policy's rate before the warmup factor.
    public func regularLearningRate(iteration: Int, epoch: Int) -> Double {
        switch policy {
        case .constant:
            return baseLearningRate
        case .step(let milestones, let gamma):
            let passed = milestones.filter { epoch >= $0 }.count
            return baseLearningRate * Foundation.pow(gamma, Double(passed))
        case .cosine(let minLRRatio, let progress):
            let fraction: Double
            switch progress {
            case .iteration: fraction = Double(iteration) / Double(totalIterations)
            case .epoch: fraction = Double(epoch) / Double(epochs)
            }
            let target = baseLearningRate * minLRRatio
            let t = Swift.min(Swift.max(fraction, 0), 1)
            return target + 0.5 * (baseLearningRate - target) * (Foundation.cos(Double.pi * t) + 1)
        }
    }
}
