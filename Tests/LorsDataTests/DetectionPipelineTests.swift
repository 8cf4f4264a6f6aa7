import Foundation
import XCTest
import LorsData
import LorsDetection
import LorsImage

private func pipelineFixtures() throws -> (root: URL, json: [String: Any]) {
    let root = try XCTUnwrap(Bundle.module.url(forResource: "Fixtures", withExtension: nil)).appendingPathComponent("pipeline")
    let data = try Data(contentsOf: root.appendingPathComponent("pipeline.json"))
    return (root, try XCTUnwrap(JSONSerialization.jsonObject(with: data) as? [String: Any]))
}

final class DetectionTransformTests: XCTestCase {
    func testBilinearResizeMatchesOpenCV() throws {
        let (root, json) = try pipelineFixtures()
        let resizes = try XCTUnwrap(json["resizes"] as? [[String: Any]])
        XCTAssertGreaterThan(resizes.count, 10)
        var worst = 0, differing = 0, total = 0
        for r in resizes {
            let source = try ByteImage.read(contentsOf: root.appendingPathComponent(r["source"] as! String).path)
            let expected = try ByteImage.read(contentsOf: root.appendingPathComponent(r["expected"] as! String).path)
            let out = BilinearResize.resize(source, width: r["width"] as! Int, height: r["height"] as! Int)
            XCTAssertEqual([out.width, out.height, out.channels], [expected.width, expected.height, expected.channels])
            for (a, b) in zip(out.pixels, expected.pixels) {
                let d = abs(Int(a) - Int(b))
                worst = max(worst, d)
                if d != 0 { differing += 1 }
            }
            total += out.pixels.count
        }
        print("BilinearResize vs cv2.resize INTER_LINEAR (OpenCV \(json["opencv"] ?? "?")): max |difference| \(worst), \(differing) of \(total) values differ")
        XCTAssertLessThanOrEqual(worst, 1)
    }

    func testBoxesMatchMMDetectionFormulas() throws {
        let (_, json) = try pipelineFixtures()
        let cases = try XCTUnwrap(json["box_cases"] as? [[String: Any]])
        for (n, c) in cases.enumerated() {
            let w = c["width"] as! Int, h = c["height"] as! Int
            let boxes = (c["boxes"] as! [Double]).map(Float.init)
            let labels = (c["labels"] as! [Int]).map(Int32.init)
            var sample = DetectionSample(image: ByteImage(width: w, height: h, channels: 3), boxes: boxes, labels: labels)
            for op in c["ops"] as! [[Any]] {
                switch op[0] as! String {
                case "flip": sample = DetectionTransforms.flip(sample)
                case "resize": sample = DetectionTransforms.resize(sample, width: op[1] as! Int, height: op[2] as! Int)
                case "crop": sample = DetectionTransforms.crop(sample, x: op[1] as! Int, y: op[2] as! Int, width: op[3] as! Int, height: op[4] as! Int)
                default: XCTFail("unknown op")
                }
            }
            XCTAssertEqual(sample.image.width, c["expected_width"] as! Int, "case \(n)")
            XCTAssertEqual(sample.image.height, c["expected_height"] as! Int, "case \(n)")
            let expected = (c["expected_boxes"] as! [Double]).map(Float.init)
            XCTAssertEqual(sample.boxes.count, expected.count, "case \(n)")
            for (a, b) in zip(sample.boxes, expected) { XCTAssertEqual(a, b, accuracy: 1e-4, "case \(n)") }
            XCTAssertEqual(sample.labels, (c["expected_labels"] as! [Int]).map(Int32.init), "case \(n)")
            let check = c["rescale_check"] as! [String: Any]
            let size = DetectionTransforms.rescaledSize(width: c["width"] as! Int, height: c["height"] as! Int, scale: (1333, 800))
            if c["note"] == nil { XCTAssertEqual([size.width, size.height], check["size"] as! [Int], "case \(n)") }
        }
    }

    func testFlipIsAnInvolution() {
        let image = ByteImage(width: 7, height: 3, channels: 3, pixels: (0..<63).map { UInt8($0 * 3 % 256) })
        let sample = DetectionSample(image: image, boxes: [1, 0, 3.5, 2, 0, 1, 7, 3], labels: [2, 5])
        let once = DetectionTransforms.flip(sample)
        XCTAssertEqual(once.boxes, [3.5, 0, 6, 2, 0, 1, 7, 3])
        XCTAssertEqual(once.image[0, 0, 1], image[6, 0, 1])
        XCTAssertTrue(once.flipped)
        XCTAssertEqual(DetectionTransforms.flip(once), sample)
    }

    func testCropDropsBoxesOutsideIt() {
        let sample = DetectionSample(image: ByteImage(width: 100, height: 80, channels: 3), boxes: [0, 0, 10, 10, 40, 30, 90, 70, 50, 0, 60, 20],
                                     labels: [1, 2, 3], ignoredBoxes: [0, 0, 5, 5])
        let out = DetectionTransforms.crop(sample, x: 30, y: 25, width: 50, height: 100)
        XCTAssertEqual([out.image.width, out.image.height], [50, 55])
        XCTAssertEqual(out.boxes, [10, 5, 50, 45])
        XCTAssertEqual(out.labels, [2])
        XCTAssertEqual(out.ignoredBoxes, [])
        let empty = DetectionTransforms.crop(sample, x: 95, y: 75, width: 5, height: 5)
        XCTAssertEqual(empty.boxes, [])
        XCTAssertEqual(empty.labels, [])
    }

    func testNormalizationAndPadding() {
        let image = ByteImage(width: 2, height: 1, channels: 3, pixels: [0, 128, 255, 10, 20, 30])
        var out = [Float](repeating: .nan, count: 3 * 2 * 32)
        out.withUnsafeMutableBufferPointer { DetectionNormalization.imagenet.write(image, into: $0.baseAddress!, height: 2, width: 32) }
        let n = DetectionNormalization.imagenet
        XCTAssertEqual(out[0], (0 - n.mean[0]) / n.std[0])
        XCTAssertEqual(out[1], (10 - n.mean[0]) / n.std[0])
        XCTAssertEqual(out[64], (128 - n.mean[1]) / n.std[1])
        XCTAssertEqual(out[128 + 1], (30 - n.mean[2]) / n.std[2])
        XCTAssertEqual(out[0], -2.1179, accuracy: 1e-4)
        for c in 0..<3 {
            for y in 0..<2 { for x in 0..<32 where y == 1 || x >= 2 { XCTAssertEqual(out[c * 64 + y * 32 + x], 0) } }
        }
        XCTAssertEqual(paddedUp(800, to: 32), 800)
        XCTAssertEqual(paddedUp(801, to: 32), 832)
    }

    func testPlansAreDeterministicAndOrderIndependent() {
        let sizes = (0..<40).map { (100 + $0 * 37 % 500, 90 + $0 * 53 % 600) }
        let p = DetectionPipeline.multiscaleCrop
        let forward = sizes.enumerated().map { p.plan(width: $1.0, height: $1.1, seed: 3, epoch: 2, index: $0) }
        let backward = sizes.enumerated().reversed().map { p.plan(width: $1.0, height: $1.1, seed: 3, epoch: 2, index: $0) }
        XCTAssertEqual(forward, backward.reversed())
        XCTAssertNotEqual(forward, sizes.enumerated().map { p.plan(width: $1.0, height: $1.1, seed: 3, epoch: 3, index: $0) })
        let crops = forward.filter { $0.steps.contains { if case .crop = $0 { return true } else { return false } } }
        XCTAssertGreaterThan(crops.count, 5)
        XCTAssertLessThan(crops.count, 35)
        XCTAssertGreaterThan(forward.filter(\.flipped).count, 5)
        for plan in forward {
            XCTAssertLessThanOrEqual(max(plan.width, plan.height), 1333)
            for step in plan.steps { if case .crop(_, _, let w, let h) = step { XCTAssertTrue((1...600).contains(w) && (1...600).contains(h)) } }
        }
        // The same sample transformed twice, in another order with others in between, is identical.
        let image = ByteImage(width: 60, height: 45, channels: 3, pixels: (0..<(60 * 45 * 3)).map { UInt8(truncatingIfNeeded: $0 &* 7) })
        let sample = DetectionSample(image: image, boxes: [5, 5, 40, 30], labels: [1])
        let plan = p.plan(width: 60, height: 45, seed: 1, epoch: 0, index: 9)
        XCTAssertEqual(DetectionPipeline.apply(plan, to: sample), DetectionPipeline.apply(p.plan(width: 60, height: 45, seed: 1, epoch: 0, index: 9), to: sample))
    }
}

/// A small COCO set on disk: images of both orientations with boxes, for the batch and loader tests.
private func makeDetectionSet(_ dir: String, count: Int = 8) throws -> COCODetectionIndex {
    var images: [String] = [], annotations: [String] = []
    var annotationID = 1
    for i in 0..<count {
        let w = i % 3 == 0 ? 40 + 7 * i : 90 + 5 * i, h = i % 3 == 0 ? 90 + 3 * i : 50 + 4 * i
        let pixels = (0..<(w * h * 3)).map { UInt8(truncatingIfNeeded: ($0 &* 2654435761 &+ i &* 97) >> 7) }
        try ByteImage(width: w, height: h, channels: 3, pixels: pixels).write(to: "\(dir)/\(i).png", format: .png, fastPNG: true)
        images.append("{\"id\": \(i + 1), \"file_name\": \"\(i).png\", \"width\": \(w), \"height\": \(h)}")
        for k in 0..<2 {
            annotations.append("{\"id\": \(annotationID), \"image_id\": \(i + 1), \"category_id\": \(k + 1), \"bbox\": [\(3 + k * 10), \(4 + k), 20, 15], \"area\": 300, \"iscrowd\": 0}")
            annotationID += 1
        }
    }
    let json = "{\"images\": [\(images.joined(separator: ","))], \"annotations\": [\(annotations.joined(separator: ","))], "
        + "\"categories\": [{\"id\": 1, \"name\": \"a\"}, {\"id\": 2, \"name\": \"b\"}]}"
    return try COCODetectionIndex(json: Array(json.utf8), source: "test.json", options: .training)
}

final class DetectionBatchTests: XCTestCase {
    func testGlobalBatchIsTheSameOnAnyNumberOfRanks() throws {
        let dir = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let index = try makeDetectionSet(dir)
        let assembler = DetectionBatchAssembler(index: index, imageDirectory: dir, pipeline: .multiscaleCrop, seed: 5)
        let global = [6, 1, 4, 0, 7, 2, 5, 3]
        let (H, W) = assembler.paddedSize(global, epoch: 1)
        var reference: [[Float]] = []
        for worldSize in [1, 2, 4] {
            var perSample: [[Float]] = []
            for rank in 0..<worldSize {
                let batch = try assembler.assemble(global, epoch: 1, rank: rank, worldSize: worldSize)
                XCTAssertEqual(batch.images.shape, [batch.imageIndices.count, 3, H, W])
                let values = batch.images.toArray(), plane = 3 * H * W
                for j in 0..<batch.imageIndices.count {
                    perSample.append(Array(values[(j * plane)..<((j + 1) * plane)]))
                    XCTAssertEqual(batch.boxes[j].count, 4 * batch.labels[j].count)
                    XCTAssertLessThanOrEqual(batch.validSizes[j].height, H)
                }
            }
            if reference.isEmpty { reference = perSample } else { XCTAssertTrue(reference == perSample, "world size \(worldSize)") }
        }
        XCTAssertEqual(H % 32, 0)
        XCTAssertEqual(W % 32, 0)
    }

    func testSamplerIsWorldSizeFreeHomogeneousAndCovering() {
        let widths: [Int32] = (0..<103).map { Int32(100 + ($0 * 37) % 200) }
        let heights: [Int32] = (0..<103).map { Int32(100 + ($0 * 61) % 200) }
        let groups = DistributedSampler.orientationGroups(widths: widths, heights: heights)
        let sampler = DistributedSampler(groups: groups, globalBatchSize: 8, seed: 11)
        let batches = sampler.batches(epoch: 3)
        XCTAssertEqual(batches, DistributedSampler(groups: groups, globalBatchSize: 8, seed: 11).batches(epoch: 3))
        XCTAssertEqual(batches.count, sampler.batchesPerEpoch)
        XCTAssertNotEqual(batches, sampler.batches(epoch: 4))
        XCTAssertEqual(batches.flatMap { $0 }.sorted(), Array(0..<103))
        XCTAssertLessThanOrEqual(batches.filter { $0.count < 8 }.count, 2)
        for batch in batches { XCTAssertEqual(Set(batch.map { widths[$0] >= heights[$0] }).count, 1) }
        for worldSize in [1, 2, 3, 4] {
            for batch in batches {
                let joined = (0..<worldSize).flatMap { batch[DistributedSampler.slice(count: batch.count, rank: $0, worldSize: worldSize)] }
                XCTAssertEqual(joined, batch)
            }
        }
    }

    func testLoaderGivesTheSameBatchesForAnyNumberOfWorkers() throws {
        let dir = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let index = try makeDetectionSet(dir)
        let assembler = DetectionBatchAssembler(index: index, imageDirectory: dir, pipeline: .multiscaleCrop, seed: 2)
        let batches = DistributedSampler(groups: DistributedSampler.orientationGroups(widths: index.widths, heights: index.heights),
                                         globalBatchSize: 3, seed: 2).batches(epoch: 0)
        var reference: [[Float]] = []
        for workers in [0, 1, 3] {
            let loader = DetectionLoader(assembler: assembler, globalBatches: batches, epoch: 0, numWorkers: workers, prefetch: 2)
            var got: [[Float]] = []
            var seen: [Int] = []
            while let batch = try loader.next() { got.append(batch.images.toArray()); seen += batch.imageIndices }
            XCTAssertEqual(seen, batches.flatMap { $0 })
            if reference.isEmpty { reference = got } else { XCTAssertTrue(reference == got, "\(workers) workers") }
        }
    }

    func testBadImagesAreErrorsOrCountedReplacements() throws {
        let dir = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let index = try makeDetectionSet(dir, count: 4)
        try FileManager.default.removeItem(atPath: "\(dir)/1.png")
        try Data([0x89, 0x50, 0x4E, 0x47, 1, 2, 3]).write(to: URL(fileURLWithPath: "\(dir)/2.png"))
        let strict = DetectionBatchAssembler(index: index, imageDirectory: dir, pipeline: .standard, seed: 0)
        for workers in [0, 2] {
            let loader = DetectionLoader(assembler: strict, globalBatches: [[0, 3], [1, 2]], epoch: 0, numWorkers: workers)
            XCTAssertNotNil(try loader.next())
            assertThrowsNaming("1.png", "image 2") { _ = try loader.next() }
        }
        assertThrowsNaming("2.png", "image 3") { _ = try strict.assemble([2], epoch: 0) }
        let lenient = DetectionBatchAssembler(index: index, imageDirectory: dir, pipeline: .standard, seed: 0, skipBadImages: true)
        var reference: [[Float]] = []
        for workers in [0, 2] {
            let loader = DetectionLoader(assembler: lenient, globalBatches: [[0, 1], [2, 3]], epoch: 0, numWorkers: workers)
            var got: [[Float]] = []
            while let batch = try loader.next() {
                got.append(batch.images.toArray())
                for (j, image) in batch.imageIndices.enumerated() where image == 1 || image == 2 { XCTAssertEqual(batch.labels[j], []) }
            }
            XCTAssertEqual(loader.skippedImages, 2)
            XCTAssertEqual(loader.warnings.count, 2)
            XCTAssertTrue(loader.warnings[0].contains("1.png"))
            if reference.isEmpty { reference = got } else { XCTAssertTrue(reference == got) }
        }
    }
}
