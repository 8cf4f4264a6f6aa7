import XCTest
import LorsConfig
import LorsOptim
import LorsTraining

/// LR values through the config path (YAML → Config → TrainingSetup.schedule), against hand-computed numbers
/// from the formula of docs/interfaces.md: base × 0.1^(milestones passed) × warmup factor (mmcv linear warmup).
final class LRScheduleConfigTests: XCTestCase {
    private func schedule(_ yaml: String, iterationsPerEpoch: Int) throws -> (Config, LRSchedule) {
        let config = try ConfigLoader(schema: .lors).load(yaml: yaml)
        return (config, TrainingSetup.schedule(RunSettings(config), iterationsPerEpoch: iterationsPerEpoch))
    }

    private func assertRates(_ schedule: LRSchedule, _ expected: [(iteration: Int, lr: Double)],
                             file: StaticString = #filePath, line: UInt = #line) {
        for (iteration, lr) in expected {
            let actual = schedule.learningRate(iteration: iteration)
            XCTAssertEqual(actual, lr, accuracy: 1e-12 + 1e-9 * lr, "iteration \(iteration)", file: file, line: line)
        }
    }

    func testPreset1x() throws {
        // 100 iterations per epoch; warmup 500 iterations from 0.001 × 0.02.
        let (config, s) = try schedule("""
            optimizer: {lr: 0.02}
            lr_schedule: {preset: 1x, warmup_iters: 500, warmup_ratio: 0.001}
            """, iterationsPerEpoch: 100)
        XCTAssertEqual(config.int("train.epochs"), 12)
        XCTAssertEqual(s.totalIterations, 1200)
        assertRates(s, [
            (0, 0.00002),            // 0.02 × 0.001
            (1, 0.00005996),         // 0.02 × (0.001 + 0.999 / 500)
            (250, 0.01001),          // 0.02 × (0.001 + 0.999 × 0.5)
            (499, 0.01996004),       // 0.02 × (0.001 + 0.999 × 499 / 500)
            (500, 0.02),             // warmup over
            (799, 0.02),             // last iteration of epoch 8 (1-based)
            (800, 0.002),            // epoch 9 (0-based 8 ≥ milestone 8)
            (1099, 0.002),
            (1100, 0.0002),          // epoch 12 (0-based 11)
            (1199, 0.0002),
        ])
    }

    func testPreset3xWithMilestoneInsideWarmup() throws {
        // 10 iterations per epoch, warmup 250 iterations: milestone 24 (iteration 240) falls inside warmup.
        let (config, s) = try schedule("""
            optimizer: {lr: 0.0001}
            lr_schedule: {preset: 3x, warmup_iters: 250, warmup_ratio: 0.1}
            """, iterationsPerEpoch: 10)
        XCTAssertEqual(config.int("train.epochs"), 36)
        XCTAssertEqual(config.intList("lr_schedule.milestones"), [24, 33])
        assertRates(s, [
            (0, 0.00001),                  // 1e-4 × 0.1
            (100, 0.000046),               // 1e-4 × (0.1 + 0.9 × 0.4)
            (239, 0.00009604),             // 1e-4 × (0.1 + 0.9 × 239 / 250), epoch 23
            (240, 0.000009640),            // epoch 24: 1e-5 × (0.1 + 0.9 × 240 / 250)
            (249, 0.000009964),            // 1e-5 × (0.1 + 0.9 × 249 / 250)
            (250, 0.00001),                // warmup over
            (329, 0.00001),                // epoch 32
            (330, 0.000001),               // epoch 33
            (359, 0.000001),               // last iteration
        ])
    }

    func testWarmupEpochsAndCosine() throws {
        let (_, s) = try schedule("""
            train: {epochs: 10}
            optimizer: {lr: 0.001}
            lr_schedule: {policy: cosine, warmup_epochs: 2, warmup_iters: 7, warmup_ratio: 0.001, min_lr_ratio: 0.01}
            """, iterationsPerEpoch: 50)
        XCTAssertEqual(s.warmupIterations, 100, "warmup_epochs × iterations per epoch, over warmup_iters")
        // Per iteration over 500 iterations; at 250 the cosine is at its midpoint: 1e-5 + 0.5 × (1e-3 − 1e-5).
        assertRates(s, [(250, 0.000505), (500, 0.00001),
                        (50, (0.001 + 0.999 * 0.5) * (0.00001 + 0.5 * 0.00099 * (1 + cos(Double.pi * 0.1))))])
        let (_, byEpoch) = try schedule("""
            train: {epochs: 10}
            optimizer: {lr: 0.001}
            lr_schedule: {policy: cosine, cosine_by: epoch, warmup_iters: 0, min_lr_ratio: 0.01}
            """, iterationsPerEpoch: 50)
        XCTAssertEqual(byEpoch.learningRate(iteration: 250), byEpoch.learningRate(iteration: 299), "constant within an epoch")
        XCTAssertEqual(byEpoch.learningRate(iteration: 250), 0.000505, accuracy: 1e-12)
    }

    func testPresetConflictAndDivisibility() {
        XCTAssertThrowsError(try ConfigLoader(schema: .lors).load(yaml: "lr_schedule: {preset: 1x}\ntrain: {epochs: 10}"))
        XCTAssertThrowsError(try ConfigLoader(schema: .lors).load(yaml: "train: {batch_size: 10, accumulation_steps: 3}")) { error in
            XCTAssertTrue("\(error)".contains("train.accumulation_steps"), "\(error)")
        }
    }
}
