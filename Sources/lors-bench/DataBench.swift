import ArgumentParser
import Dispatch
import Foundation
import LorsCLI
import LorsConfig
import LorsData
import LorsDetection
import LorsImage
import LorsNative
import LorsTraining

/// `lors-bench data`: the COCO dataset index a run builds before training, and image decoding.
///
/// - `--coco-json PATH`: reads `COCODetectionIndex` from an instances file (mmdetection's training filters, or
///   `--test-mode`) and reports the seconds, the process's peak resident memory after reading (VmHWM), what was kept
///   and dropped, and the size of the serialized index one rank sends to the others (with the seconds to write it
///   and read it back).
/// - `--images DIR --annotations JSON`: decodes the index's images (test mode: every image, in file order, the first
///   `--limit`) from DIR through LorsImage as RGB, with 1 thread and then 2 threads (each image decoded whole by one
///   thread): file read + decode only. Then the same images through `DetectionLoader` with 1 and 2 worker threads:
///   decode + the standard training pipeline (random flip, keep-ratio resize to 1333×800 with OpenCV's bilinear
///   arithmetic, normalisation, zero padding to a multiple of 32), in batches of 2. The files are read once untimed
///   first, so every figure sees a warm page cache.
/// - `--config CONFIG [--set k=v ...]`: the training data of a detection config as a run builds it
///   (`DetectionDataSetup`: its index, `data.pipeline`, normalisation, `data.skip_bad_images`), through the same
///   loader measurement with 1 and 2 workers: the first global batches of epoch 0 from the run's sampler, whole
///   batches until at least `--limit` images.
struct DataBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "data",
        abstract: "COCO index load time and memory (--coco-json), image decode and pipeline rates (--images --annotations), "
            + "or a detection config's training pipeline rate (--config).")
    @Option(help: "A COCO instances JSON file: time and memory of reading its index.") var cocoJson: String?
    @Option(help: "A directory of images (with --annotations): decode images/s with 1 and 2 threads.") var images: String?
    @Option(help: "The instances JSON naming the images under --images.") var annotations: String?
    @Option(help: "A detection config: decode + its training pipeline, images/s with 1 and 2 workers.") var config: String?
    @Option(name: .customLong("set"), parsing: .unconditionalSingleValue,
            help: ArgumentHelp("Override a key of --config: --set data.root=DIR (repeatable).", valueName: "key=value"))
    var overrides: [String] = []
    @Option(help: "Images per pass (--images, --config).") var limit: Int = 1000
    @Flag(help: "Keep every image (validation): no empty-image or size filter (--coco-json).") var testMode = false
    @Option(help: "Drop training images whose shorter side is below this (--coco-json).") var minSize: Int = 32
    @Flag(help: "Keep training images that no annotation refers to (--coco-json).") var keepEmpty = false
    @Flag(help: "Print JSON.") var json = false

    func validate() throws {
        let modes = [cocoJson != nil, images != nil || annotations != nil, config != nil].filter { $0 }.count
        guard modes == 1 else {
            throw ValidationError("give one of --coco-json PATH, --images DIR with --annotations JSON, or --config CONFIG")
        }
        if images != nil || annotations != nil {
            guard images != nil, annotations != nil else { throw ValidationError("--images and --annotations go together") }
        }
        guard overrides.isEmpty || config != nil else { throw ValidationError("--set goes with --config") }
        guard limit > 0 else { throw ValidationError("--limit must be positive") }
    }

    func run() throws {
        if let cocoJson {
            try indexBench(cocoJson)
        } else if let images, let annotations {
            try decodeBench(images, annotations)
        } else if let config {
            try configBench(config)
        }
    }

    private func indexBench(_ path: String) throws {
        let options = COCODetectionIndex.Options(filterEmptyGT: !keepEmpty, minImageSize: minSize, testMode: testMode)
        var index: COCODetectionIndex!
        let loadSeconds = try time { index = try COCODetectionIndex(path: path, options: options) }
        let peak = ProcessStats.peakRSSMB
        var bytes: [UInt8] = []
        let serializeSeconds = time { bytes = index.serialized() }
        var copy: COCODetectionIndex!
        let deserializeSeconds = try time { copy = try COCODetectionIndex(serialized: bytes) }
        guard copy == index else { throw ValidationError("the serialized index did not read back equal") }
        let fileBytes = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0
        let c = index.counts
        let report: JSONObject = [
            "coco_json": .string(path), "file_bytes": .int(fileBytes), "mode": .string(testMode ? "test" : "train"),
            "filter_empty_gt": .bool(!testMode && !keepEmpty), "min_size": .int(testMode ? 0 : minSize),
            "seconds": .double(loadSeconds), "mb_per_s": .double(Double(fileBytes) / 1e6 / loadSeconds), "peak_rss_mb": .double(peak),
            "images_in_file": .int(c.imagesInFile), "images_kept": .int(index.count),
            "images_dropped_empty": .int(c.imagesDroppedEmpty), "images_dropped_small": .int(c.imagesDroppedSmall),
            "images_kept_without_boxes": .int(c.imagesKeptWithoutBoxes),
            "annotations_in_file": .int(c.annotationsInFile), "boxes": .int(c.boxes), "ignored_boxes": .int(c.ignoredBoxes),
            "annotations_skipped": .int(c.annotationsSkipped), "annotations_of_dropped_images": .int(c.annotationsOfDroppedImages),
            "classes": .int(index.classCount), "serialized_bytes": .int(bytes.count),
            "serialize_s": .double(serializeSeconds), "deserialize_s": .double(deserializeSeconds),
        ]
        if json { print(report.text(.indented)); return }
        print(String(format: "%@ (%.1f MB, %@ mode): index read in %.2f s (%.0f MB/s), peak RSS %.0f MB", path, Double(fileBytes) / 1e6,
                     testMode ? "test" : "train", loadSeconds, Double(fileBytes) / 1e6 / loadSeconds, peak))
        print("images: \(c.imagesInFile) in the file, \(index.count) kept, \(c.imagesDroppedEmpty) dropped without annotations, "
              + "\(c.imagesDroppedSmall) dropped below \(minSize) px; \(c.imagesKeptWithoutBoxes) kept without boxes")
        print("annotations: \(c.annotationsInFile) in the file, \(c.boxes) boxes, \(c.ignoredBoxes) ignored (crowd), "
              + "\(c.annotationsSkipped) skipped (ignore, outside, area <= 0, w or h < 1), \(c.annotationsOfDroppedImages) on dropped images")
        print(String(format: "serialized index: %d bytes (%.2f MB), written in %.3f s, read back in %.3f s; %d classes", bytes.count,
                     Double(bytes.count) / 1e6, serializeSeconds, deserializeSeconds, index.classCount))
    }

    private func decodeBench(_ directory: String, _ annotations: String) throws {
        let index = try COCODetectionIndex(path: annotations, options: .test)
        let paths = (0..<min(limit, index.count)).map { (directory as NSString).appendingPathComponent(index.fileName($0)) }
        guard !paths.isEmpty else { throw ValidationError("\(annotations) lists no images") }
        try Self.warmUp(paths)
        var rates: [(threads: Int, imagesPerSecond: Double, megapixelsPerSecond: Double)] = []
        for threads in [1, 2] {
            let failures = Failures()
            let counted = PixelCount()
            let seconds = time {
                DispatchQueue.concurrentPerform(iterations: threads) { worker in
                    var local = 0
                    for k in stride(from: worker, to: paths.count, by: threads) {
                        do {
                            let image = try ByteImage.read(contentsOf: paths[k], channels: 3)
                            local += image.width * image.height
                        } catch {
                            failures.record(error)
                            return
                        }
                    }
                    counted.add(local)
                }
            }
            if let error = failures.first { throw error }
            rates.append((threads, Double(paths.count) / seconds, Double(counted.total) / 1e6 / seconds))
        }
        // Decode + the standard training pipeline, through the loader with 1 and 2 workers.
        let assembler = DetectionBatchAssembler(index: index, imageDirectory: directory, pipeline: .standard, seed: 0)
        let count = paths.count
        let batches = stride(from: 0, to: count, by: 2).map { Array($0..<min($0 + 2, count)) }
        let pipelineRates = try Self.pipelineRates(assembler, batches: batches)
        let note = "decode: file read + decode to RGB; pipeline: decode + flip, resize to 1333x800, normalize, pad to 32 (DetectionLoader)"
        if json {
            let report: JSONObject = [
                "images_dir": .string(directory), "annotations": .string(annotations), "images": .int(paths.count),
                "decode": .array(rates.map { ["threads": .int($0.threads), "images_per_s": .double($0.imagesPerSecond),
                                              "megapixels_per_s": .double($0.megapixelsPerSecond)] }),
                "pipeline": .array(pipelineRates.map { ["workers": .int($0.workers), "images_per_s": .double($0.imagesPerSecond)] }),
                "note": .string(note),
            ]
            print(report.text(.indented))
            return
        }
        for rate in rates {
            print(String(format: "decode only: %d image(s) of %@, %d thread(s): %.0f images/s (%.1f Mpixel/s)", paths.count, directory,
                         rate.threads, rate.imagesPerSecond, rate.megapixelsPerSecond))
        }
        for rate in pipelineRates {
            print(String(format: "decode + standard pipeline: %d image(s), %d worker(s): %.1f images/s", paths.count, rate.workers,
                         rate.imagesPerSecond))
        }
        print("(\(note))")
    }
}

extension DataBench {
    /// Reads every file once (a warm page cache for every timed figure) and decodes the first (the codecs' first-use
    /// setup), untimed.
    static func warmUp(_ paths: [String]) throws {
        for path in paths { _ = FileManager.default.contents(atPath: path) }
        if let first = paths.first { _ = try ByteImage.read(contentsOf: first, channels: 3) }
    }

    /// Decode + transform rate of `batches` (global batches, one rank) through `DetectionLoader` with each worker count.
    static func pipelineRates(_ assembler: DetectionBatchAssembler, batches: [[Int]], epoch: Int = 0,
                              workers: [Int] = [1, 2]) throws -> [(workers: Int, imagesPerSecond: Double)] {
        let count = batches.reduce(0) { $0 + $1.count }
        var rates: [(workers: Int, imagesPerSecond: Double)] = []
        for n in workers {
            let loader = DetectionLoader(assembler: assembler, globalBatches: batches, epoch: epoch, numWorkers: n, prefetch: 2)
            var delivered = 0
            let seconds = try time { while let batch = try loader.next() { delivered += batch.imageIndices.count } }
            guard delivered == count else { throw ValidationError("the loader delivered \(delivered) of \(count) images") }
            rates.append((n, Double(count) / seconds))
        }
        return rates
    }

    /// `--config`: the run's training data (`DetectionDataSetup`), its first global batches of epoch 0.
    private func configBench(_ path: String) throws {
        let settings = RunSettings(try ConfigLoader(schema: .lors).load(file: path, overrides: overrides))
        let setup = try DetectionDataSetup(settings)
        var batches: [[Int]] = []
        var count = 0
        for batch in setup.sampler.batches(epoch: 0) where count < limit {
            batches.append(batch)
            count += batch.count
        }
        try Self.warmUp(batches.joined().map { setup.train.path($0) })
        let rates = try Self.pipelineRates(setup.train, batches: batches)
        let pipeline = settings.data.pipeline.rawValue
        let steps = settings.data.pipeline == .standard ? "flip, resize to 1333x800" : "flip, multi-scale resize or resize-crop-resize"
        let note = "decode + the \(pipeline) training pipeline (\(steps), normalize, pad to 32) of the config's training data "
            + "(DetectionLoader)"
        if json {
            let report: JSONObject = [
                "config": .string(path), "dataset": .string(settings.data.dataset.rawValue), "data_pipeline": .string(pipeline),
                "images_dir": .string(setup.train.imageDirectory), "images": .int(count), "batches": .int(batches.count),
                "batch_size": .int(settings.train.batchSize),
                "pipeline": .array(rates.map { ["workers": .int($0.workers), "images_per_s": .double($0.imagesPerSecond)] }),
                "note": .string(note),
            ]
            print(report.text(.indented))
            return
        }
        for rate in rates {
            print(String(format: "decode + %@ pipeline: %d image(s) in %d batch(es) of %@, %d worker(s): %.1f images/s", pipeline,
                         count, batches.count, setup.train.imageDirectory, rate.workers, rate.imagesPerSecond))
        }
        print("(\(note))")
    }
}

private func time(_ body: () throws -> Void) rethrows -> Double {
    let start = DispatchTime.now().uptimeNanoseconds
    try body()
    return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
}

/// The first error of the decoding threads.
private final class Failures: @unchecked Sendable {
    private let lock = NSLock()
    private(set) var first: Error?
    func record(_ error: Error) { lock.withLock { if first == nil { first = error } } }
}

private final class PixelCount: @unchecked Sendable {
    private let lock = NSLock()
    private var value = 0
    var total: Int { lock.withLock { value } }
    func add(_ count: Int) { lock.withLock { value += count } }
}
