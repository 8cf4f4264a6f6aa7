import XCTest
import LorsData
import LorsTensor
import LorsTestSupport

final class AugmentationTests: XCTestCase {
    /// 10 images of 3×4×4 with distinct pixels.
    private func dataset() -> ImageDataset {
        let count = 10, size = 3 * 4 * 4
        return ImageDataset(name: "t", pixels: (0..<(count * size)).map { UInt8(($0 * 7) % 256) },
                            labels: (0..<count).map { Int32($0 % 5) }, channels: 3, height: 4, width: 4, classes: 5)
    }

    func testSameSeedEpochIndexGiveSameSampleWhateverTheBatchSplit() {
        let set = dataset()
        let augmentation = SampleAugmentation(randomFlip: true, cropPadding: 2)
        let assembler = BatchAssembler(dataset: set, normalization: .centered(channels: 3), augmentation: augmentation, seed: 5)
        let indices = [7, 2, 9, 0, 4, 1]
        let whole = assembler.assemble(indices, epoch: 3).images.toArray()
        var parts: [Float] = []
        for chunk in [[7, 2], [9], [0, 4, 1]] { parts += assembler.assemble(chunk, epoch: 3).images.toArray() }
        XCTAssertEqual(whole, parts, "a sample's augmentation must not depend on the batch it is in")
        // Another assembler (another rank) agrees for a single sample.
        let other = BatchAssembler(dataset: set, normalization: .centered(channels: 3), augmentation: augmentation, seed: 5)
        XCTAssertEqual(other.assemble([9], epoch: 3).images.toArray(), Array(whole[(2 * 48)..<(3 * 48)]))
        // The draws change with the epoch and the seed (over many samples, some differ).
        let e3 = (0..<10).map { augmentation.draws(seed: 5, epoch: 3, index: $0) }
        let e4 = (0..<10).map { augmentation.draws(seed: 5, epoch: 4, index: $0) }
        let s6 = (0..<10).map { augmentation.draws(seed: 6, epoch: 3, index: $0) }
        XCTAssertFalse(zip(e3, e4).allSatisfy { $0 == $1 })
        XCTAssertFalse(zip(e3, s6).allSatisfy { $0 == $1 })
        // Both flips and several offsets occur.
        let many = (0..<200).map { augmentation.draws(seed: 1, epoch: 0, index: $0) }
        XCTAssertEqual(Set(many.map(\.flip)).count, 2)
        XCTAssertEqual(Set(many.map(\.dy)), Set(0...4))
    }

    func testFlipAndCropGeometryAndNormalization() {
        // One 1×2×3 image: rows [10 20 30], [40 50 60].
        let set = ImageDataset(name: "g", pixels: [10, 20, 30, 40, 50, 60], labels: [0], channels: 1, height: 2, width: 3, classes: 1)
        let norm = Normalization(mean: [0], std: [1.0 / 255])  // value = pixel exactly
        var out = [Float](repeating: -1, count: 6)
        // Find a flipped, uncropped draw and a cropped unflipped one among seeds.
        let flipOnly = SampleAugmentation(randomFlip: true)
        let flippedIndex = (0..<50).first { flipOnly.draws(seed: 0, epoch: 0, index: $0).flip }!
        let big = ImageDataset(name: "g", pixels: Array(repeating: [10, 20, 30, 40, 50, 60], count: 50).flatMap { $0 },
                               labels: Array(repeating: 0, count: 50), channels: 1, height: 2, width: 3, classes: 1)
        flipOnly.apply(big, index: flippedIndex, seed: 0, epoch: 0, normalization: norm, into: &out)
        assertClose(out, [30, 20, 10, 60, 50, 40], atol: 1e-3)
        let crop = SampleAugmentation(cropPadding: 1)
        let (dy, dx, _) = crop.draws(seed: 0, epoch: 0, index: 0)
        crop.apply(set, index: 0, seed: 0, epoch: 0, normalization: norm, into: &out)
        var expected = [Float](repeating: 0, count: 6)
        let source: [[Float]] = [[10, 20, 30], [40, 50, 60]]
        for y in 0..<2 { for x in 0..<3 {
            let sy = y + dy - 1, sx = x + dx - 1
            expected[y * 3 + x] = (0..<2).contains(sy) && (0..<3).contains(sx) ? source[sy][sx] : 0
        } }
        assertClose(out, expected, atol: 1e-3)
        // Normalisation with the Fashion-MNIST statistics.
        SampleAugmentation.none.apply(set, index: 0, seed: 0, epoch: 0, normalization: .fashionMNIST, into: &out)
        XCTAssertEqual(out[0], (10.0 / 255 - 0.2860) / 0.3530, accuracy: 1e-5)
    }

    func testEpochOrderIsAPermutationKeyedBySeedAndEpoch() {
        let sampler = DistributedSampler(datasetSize: 100, globalBatchSize: 10, seed: 1)
        let a = sampler.order(epoch: 0)
        XCTAssertEqual(a.sorted(), Array(0..<100))
        XCTAssertEqual(a, DistributedSampler(datasetSize: 100, globalBatchSize: 7, seed: 1).order(epoch: 0))
        XCTAssertNotEqual(a, sampler.order(epoch: 1))
        XCTAssertNotEqual(a, DistributedSampler(datasetSize: 100, globalBatchSize: 10, seed: 2).order(epoch: 0))
    }

    func testMixupAndCutMix() {
        let mixup = BatchMixing(mixupAlpha: 0.8)
        let d = mixup.decide(seed: 1, step: 3, height: 4, width: 4)
        XCTAssertEqual(d, mixup.decide(seed: 1, step: 3, height: 4, width: 4), "deterministic")
        XCTAssertEqual(d.mode, .mixup)
        XCTAssertTrue(d.lambda > 0 && d.lambda < 1)
        let images: [Float] = [1, 1, 0, 0]  // 2 images of 1×1×2
        var mixed = [Float](repeating: 0, count: 4)
        let targets = mixup.apply(d, images: images, own: [0, 1], partners: [1, 0], into: &mixed, channels: 1, height: 1, width: 2,
                                  labels: [0, 1], partnerLabels: [1, 0], classes: 2)
        let l = Float(d.lambda)
        assertClose(mixed, [l, l, 1 - l, 1 - l], atol: 1e-6)
        assertClose(targets, [l, 1 - l, 1 - l, l], atol: 1e-6)

        let cutmix = BatchMixing(cutmixAlpha: 1.0)
        var sawBox = false
        for step in 0..<20 {
            let c = cutmix.decide(seed: 2, step: step, height: 8, width: 8)
            XCTAssertEqual(c.mode, .cutmix)
            let area = (c.box.y1 - c.box.y0) * (c.box.x1 - c.box.x0)
            XCTAssertEqual(c.lambda, 1 - Double(area) / 64, accuracy: 1e-12, "λ corrected to the pasted area")
            sawBox = sawBox || area > 0
        }
        XCTAssertTrue(sawBox)
        // Beta(α, α) has mean 1/2: a rough check over many keys.
        var stream = CounterStream(key: RandomKey(seed: 9, purpose: "beta-test"))
        let draws = (0..<4000).map { _ in stream.beta(0.8, 0.8) }
        XCTAssertEqual(draws.reduce(0, +) / 4000, 0.5, accuracy: 0.02)
        XCTAssertTrue(draws.allSatisfy { $0 > 0 && $0 < 1 })
        // Probability 0 of mixing: untouched.
        XCTAssertEqual(BatchMixing(mixupAlpha: 1, mixProb: 0).isEnabled, false)
        // Both on: both modes occur with switch probability 1/2.
        let both = BatchMixing(mixupAlpha: 0.8, cutmixAlpha: 1.0, switchProb: 0.5)
        let modes = Set((0..<50).map { both.decide(seed: 3, step: $0, height: 8, width: 8).mode })
        XCTAssertEqual(modes, [.mixup, .cutmix])
    }

    func testBatchAssemblerWithMixingGivesSoftTargets() {
        let set = dataset()
        let assembler = BatchAssembler(dataset: set, normalization: .centered(channels: 3), mixing: BatchMixing(mixupAlpha: 1),
                                       seed: 1)
        let batch = assembler.assemble([0, 1, 2, 3], epoch: 0, step: 1)
        let soft = try! XCTUnwrap(batch.softTargets)
        XCTAssertEqual(soft.shape, [4, 5])
        let rows = soft.toArray()
        for r in 0..<4 { XCTAssertEqual(rows[(r * 5)..<(r * 5 + 5)].reduce(0, +), 1, accuracy: 1e-6) }
    }

    /// Mixing pairs sample i with sample B−1−i of the GLOBAL batch, one decision per step: every split of the
    /// global batch into slices (ranks × micro-batches) gives the samples and targets of the whole batch, bitwise.
    func testMixingOverTheGlobalBatchDoesNotDependOnHowItIsSplit() {
        let set = dataset()
        let global = [7, 2, 9, 0, 4, 1, 3]
        let plain = BatchAssembler(dataset: set, normalization: .centered(channels: 3),
                                   augmentation: SampleAugmentation(randomFlip: true, cropPadding: 1), seed: 4)
        var mixedSteps = 0
        for mixing in [BatchMixing(mixupAlpha: 0.8), BatchMixing(cutmixAlpha: 1.0), BatchMixing(mixupAlpha: 0.8, cutmixAlpha: 1, mixProb: 0.5)] {
            let assembler = BatchAssembler(dataset: set, normalization: .centered(channels: 3),
                                           augmentation: SampleAugmentation(randomFlip: true, cropPadding: 1), mixing: mixing, seed: 4)
            for step in 1...6 {
                let whole = assembler.assemble(globalBatch: global, positions: 0..<7, epoch: 2, step: step)
                let images = whole.images.toArray(), targets = whole.softTargets?.toArray() ?? []
                if let decision = whole.mixing, decision.lambda < 1 {
                    mixedSteps += 1
                    XCTAssertNotEqual(images, plain.assemble(global, epoch: 2).images.toArray(), "the step mixed its samples")
                }
                for cuts in [[0, 3, 7], [0, 1, 2, 5, 7], [0, 4, 7], [0, 6, 7]] {
                    var gotImages: [Float] = [], gotTargets: [Float] = []
                    for k in 0..<(cuts.count - 1) {
                        let part = assembler.assemble(globalBatch: global, positions: cuts[k]..<cuts[k + 1], epoch: 2, step: step)
                        XCTAssertEqual(part.mixing, whole.mixing)
                        gotImages += part.images.toArray()
                        gotTargets += part.softTargets?.toArray() ?? []
                    }
                    XCTAssertEqual(gotImages.map(\.bitPattern), images.map(\.bitPattern), "cuts \(cuts) step \(step)")
                    XCTAssertEqual(gotTargets.map(\.bitPattern), targets.map(\.bitPattern), "cuts \(cuts) step \(step)")
                }
            }
        }
        XCTAssertGreaterThan(mixedSteps, 6)
    }

    func testTopKAccuracy() {
        var accuracy = TopKAccuracy()
        // 6 classes; sample 0 correct at top-1, sample 1 true class ranked 3rd, sample 2 ranked 6th.
        let logits: [Float] = [5, 1, 0, 0, 0, 0,
                               3, 4, 2, 0, 0, 1,
                               1, 2, 3, 4, 5, 0]
        accuracy.update(logits: logits, classes: 6, labels: [0, 2, 5])
        XCTAssertEqual(accuracy.total, 3)
        XCTAssertEqual(accuracy.top1, 1.0 / 3, accuracy: 1e-12)
        XCTAssertEqual(accuracy.top5, 2.0 / 3, accuracy: 1e-12)
    }
}
