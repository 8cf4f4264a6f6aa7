import XCTest
import LorsOptim

/// Expected rates are worked out by hand from docs/interfaces.md / mmcv (never from LRSchedule):
/// warmup factor = ratio + (1 − ratio)·it/warmup; step decay 0.1 per passed milestone (0-based epochs);
/// cosine = target + ½(base − target)(1 + cos(π·t/T)).
final class LRScheduleTests: XCTestCase {
    private func assertRate(_ schedule: LRSchedule, iteration: Int, epoch: Int? = nil, _ expected: Double,
                            file: StaticString = #filePath, line: UInt = #line) {
        let actual = epoch.map { schedule.learningRate(iteration: iteration, epoch: $0) } ?? schedule.learningRate(iteration: iteration)
        XCTAssertEqual(actual, expected, accuracy: expected * 1e-12, "iteration \(iteration) epoch \(epoch.map(String.init) ?? "derived")",
                       file: file, line: line)
    }

    func testPresets() {
        XCTAssertEqual(LRSchedule.Preset.oneX.epochs, 12)
        XCTAssertEqual(LRSchedule.Preset.oneX.milestones, [8, 11])
        XCTAssertEqual(LRSchedule.Preset.threeX.epochs, 36)
        XCTAssertEqual(LRSchedule.Preset.threeX.milestones, [24, 33])
        XCTAssertEqual(LRSchedule.Preset(rawValue: "3x"), .threeX)
        let s = LRSchedule.preset(.threeX, baseLearningRate: 1e-4, iterationsPerEpoch: 1000)
        XCTAssertEqual(s.totalIterations, 36_000)
        XCTAssertEqual(s.warmupIterations, 500)
        XCTAssertEqual(s.warmupRatio, 0.001)
        XCTAssertEqual(s.policy, .step(milestones: [24, 33], gamma: 0.1))
    }

    func testOneXWarmupAndMilestones() {
        // base 1e-4, 1000 iterations per epoch, warmup 500 iterations from ratio 0.001.
        let s = LRSchedule.preset(.oneX, baseLearningRate: 1e-4, iterationsPerEpoch: 1000)
        assertRate(s, iteration: 0, 1e-7)                   // 1e-4 × 0.001
        assertRate(s, iteration: 1, 2.998e-7)               // 1e-4 × (0.001 + 0.999/500 = 0.002998)
        assertRate(s, iteration: 250, 5.005e-5)             // 1e-4 × (0.001 + 0.999 × 0.5 = 0.5005)
        assertRate(s, iteration: 499, 9.98002e-5)           // 1e-4 × (0.001 + 0.999 × 0.998 = 0.998002)
        assertRate(s, iteration: 500, 1e-4)                 // warmup over
        assertRate(s, iteration: 7999, 1e-4)                // epoch 7 (8th, 1-based): still base
        assertRate(s, iteration: 8000, 1e-5)                // epoch 8 ≥ 8: one drop
        assertRate(s, iteration: 10_999, 1e-5)              // epoch 10
        assertRate(s, iteration: 11_000, 1e-6)              // epoch 11 ≥ 11: two drops
        assertRate(s, iteration: 11_999, 1e-6)              // last iteration
        // The explicit epoch governs the decay, the iteration the warmup.
        assertRate(s, iteration: 8000, epoch: 7, 1e-4)
        assertRate(s, iteration: 100, epoch: 8, 1e-5 * 0.2008)   // 0.001 + 0.999 × 0.2 = 0.2008
    }

    func testThreeXMilestones() {
        let s = LRSchedule.preset(.threeX, baseLearningRate: 1e-4, iterationsPerEpoch: 1000)
        assertRate(s, iteration: 0, 1e-7)
        assertRate(s, iteration: 250, 5.005e-5)
        assertRate(s, iteration: 600, 1e-4)
        assertRate(s, iteration: 23_999, 1e-4)    // epoch 23
        assertRate(s, iteration: 24_000, 1e-5)    // epoch 24
        assertRate(s, iteration: 32_999, 1e-5)    // epoch 32
        assertRate(s, iteration: 33_000, 1e-6)    // epoch 33
        assertRate(s, iteration: 35_999, 1e-6)    // epoch 35, last
    }

    func testWarmupLongerThanFirstMilestoneMultiplies() {
        // Warmup 10 000 iterations, 1000 per epoch, milestones [8, 11]: at it 8500 (epoch 8) the rate is
        // 1e-4 × 0.1 × (0.001 + 0.999 × 0.85 = 0.85015).
        let s = LRSchedule.preset(.oneX, baseLearningRate: 1e-4, iterationsPerEpoch: 1000, warmupIterations: 10_000)
        assertRate(s, iteration: 8500, 1e-5 * 0.85015)
        assertRate(s, iteration: 10_000, 1e-5)
    }

    func testCosineByIterationWithWarmup() {
        // base 1e-3, min ratio 0.01 (target 1e-5), T = 10 epochs × 100 = 1000 iterations, warmup 100 from 0.001.
        // ½(base − target) = 4.95e-4.
        let s = LRSchedule(baseLearningRate: 1e-3, policy: .cosine(minLRRatio: 0.01, progress: .iteration),
                           epochs: 10, iterationsPerEpoch: 100, warmupIterations: 100, warmupRatio: 0.001)
        assertRate(s, iteration: 0, 1e-6)                                                  // cos 0 = 1: 1e-3 × 0.001
        assertRate(s, iteration: 50, (1e-5 + 4.95e-4 * (1 + 0.98768834059513777)) * 0.5005) // cos(0.05π) = cos 9°
        assertRate(s, iteration: 100, 1e-5 + 4.95e-4 * (1 + 0.95105651629515357))         // cos(0.1π) = cos 18°
        assertRate(s, iteration: 500, 5.05e-4)                                             // cos(π/2) = 0
        assertRate(s, iteration: 750, 1e-5 + 4.95e-4 * (1 - 0.70710678118654752))         // cos(3π/4)
        assertRate(s, iteration: 999, 1e-5 + 4.95e-4 * (1 - 0.99999506520185821))         // cos(0.999π)
        assertRate(s, iteration: 1000, 1e-5)
        assertRate(s, iteration: 1200, 1e-5)                                               // clamped past the end
    }

    func testCosineByEpoch() {
        let s = LRSchedule(baseLearningRate: 1e-3, policy: .cosine(minLRRatio: 0.01, progress: .epoch),
                           epochs: 10, iterationsPerEpoch: 100)
        assertRate(s, iteration: 0, 1e-3)
        assertRate(s, iteration: 499, 1e-5 + 4.95e-4 * (1 + 0.30901699437494742))         // epoch 4: cos(0.4π)
        assertRate(s, iteration: 500, 5.05e-4)                                             // epoch 5
        assertRate(s, iteration: 599, 5.05e-4)                                             // still epoch 5
    }

    func testConstantWithWarmup() {
        let s = LRSchedule(baseLearningRate: 0.1, policy: .constant, epochs: 1, iterationsPerEpoch: 100,
                           warmupIterations: 10, warmupRatio: 0.1)
        assertRate(s, iteration: 0, 0.01)          // 0.1 × 0.1
        assertRate(s, iteration: 5, 0.055)         // 0.1 × (0.1 + 0.9 × 0.5)
        assertRate(s, iteration: 10, 0.1)
        assertRate(s, iteration: 99, 0.1)
    }
}
