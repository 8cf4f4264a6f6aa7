import LorsData
import XCTest

final class DistributedSamplerTests: XCTestCase {
    func testGlobalBatchesDoNotDependOnTheWorldSize() {
        let sampler = DistributedSampler(datasetSize: 50, globalBatchSize: 12, seed: 5)
        XCTAssertEqual(sampler.batchesPerEpoch, 4)
        for epoch in 0..<2 {
            let batches = sampler.batches(epoch: epoch)
            XCTAssertEqual(batches.count, 4)
            for (j, batch) in batches.enumerated() {
                XCTAssertEqual(batch, sampler.globalBatch(epoch: epoch, index: j))
                XCTAssertEqual(batch, Array(sampler.order(epoch: epoch)[(12 * j)..<(12 * j + 12)]))
                for world in [1, 2, 3, 4, 6] {
                    let slices = (0..<world).map { DistributedSampler.slice(count: batch.count, rank: $0, worldSize: world) }
                    XCTAssertEqual(slices.flatMap { Array(batch[$0]) }, batch, "world \(world) epoch \(epoch) batch \(j)")
                    XCTAssertEqual(Set(slices.map(\.count)), [12 / world], "equal slices when the batch divides")
                }
            }
        }
        XCTAssertNotEqual(sampler.order(epoch: 0), sampler.order(epoch: 1), "each epoch reshuffles")
        XCTAssertEqual(sampler.order(epoch: 0).sorted(), Array(0..<50))
        XCTAssertEqual(DistributedSampler(datasetSize: 5, globalBatchSize: 2, seed: 5, shuffle: false).batches(epoch: 3), [[0, 1], [2, 3]])
    }

    func testMicroBatchesSplitASliceInOrder() {
        for (n, parts) in [(12, 3), (7, 2), (2, 4), (0, 1)] {
            let range = 5..<(5 + n)
            let pieces = (0..<parts).map { DistributedSampler.split(range, part: $0, of: parts) }
            XCTAssertEqual(pieces.flatMap { Array($0) }, Array(range))
            XCTAssertLessThanOrEqual((pieces.map(\.count).max() ?? 0) - (pieces.map(\.count).min() ?? 0), 1)
        }
    }

    func testResumeFromStepAlone() {
        let s = DistributedSampler(datasetSize: 40, globalBatchSize: 8, seed: 9)
        XCTAssertEqual(s.position(ofStep: 12).epoch, 2)
        XCTAssertEqual(s.position(ofStep: 12).batch, 2)
        XCTAssertEqual(s.globalBatch(epoch: 2, index: 2), s.batches(epoch: 2)[2])
    }

    func testGroupedBatchesHoldOneGroupAndCountTheSameEveryEpoch() {
        let groups = (0..<53).map { ($0 * 7) % 3 == 0 ? 1 : 0 }
        let s = DistributedSampler(groups: groups, globalBatchSize: 6, seed: 4)
        let sizes = [0, 1].map { g in groups.filter { $0 == g }.count }
        XCTAssertEqual(s.batchesPerEpoch, sizes.map { ($0 + 5) / 6 }.reduce(0, +))
        for epoch in 0..<3 {
            let batches = s.batches(epoch: epoch)
            XCTAssertEqual(batches.count, s.batchesPerEpoch)
            XCTAssertEqual(batches.flatMap { $0 }.sorted(), Array(0..<53))
            for batch in batches { XCTAssertEqual(Set(batch.map { groups[$0] }).count, 1) }
            XCTAssertLessThanOrEqual(batches.filter { $0.count < 6 }.count, 2)
        }
        XCTAssertNotEqual(s.batches(epoch: 0), s.batches(epoch: 1))
    }

    func testEvaluationShardsCoverEverySampleOnceWithoutPadding() {
        for n in [0, 1, 7, 10, 101] {
            for world in 1...5 {
                let ranges = (0..<world).map { DistributedSampler.evaluationRange(datasetSize: n, rank: $0, worldSize: world) }
                XCTAssertEqual(ranges.flatMap { Array($0) }, Array(0..<n), "n \(n), world \(world)")
                let counts = DistributedSampler.evaluationCounts(datasetSize: n, worldSize: world)
                XCTAssertEqual(counts.reduce(0, +), n)
                XCTAssertLessThanOrEqual((counts.max() ?? 0) - (counts.min() ?? 0), 1)
            }
            XCTAssertEqual(DistributedSampler.evaluationBatches(count: n, batchSize: 4).flatMap { Array($0) }, Array(0..<n))
        }
    }
}
