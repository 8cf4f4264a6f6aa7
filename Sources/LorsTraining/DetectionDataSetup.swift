import Foundation
import LorsConfig
import LorsData
import LorsDetection
import LorsDistributed

/// An error of building the detection data of a config; each names the file and the config key.
public enum DetectionDataError: Error, CustomStringConvertible, Equatable {
    /// `data.dataset` is not a COCO-format detection set.
    case notDetection(dataset: String)
    /// A configured file or directory does not exist; `hint` says how to make it (the `fmnist_det` set).
    case missing(path: String, key: String, hint: String?)
    /// An instances file could not be read (`detail` is the reader's error, which names the line and column).
    case unreadable(path: String, key: String, detail: String)
    /// The training annotations keep no image.
    case noTrainingImages(path: String, key: String)
    /// The training and validation files list different categories.
    case categoriesDiffer(train: String, val: String)

    public var description: String {
        switch self {
        case let .notDetection(dataset):
            return "\(RunSettings.Data.Key.dataset): '\(dataset)' is not a detection set; the detection data reads "
                + RunSettings.Data.Dataset.allCases.filter(\.isDetection).map(\.rawValue).joined(separator: ", ")
        case let .missing(path, key, hint):
            return "\(path) (\(key)) does not exist" + (hint.map { "; \($0)" } ?? "")
        case let .unreadable(path, key, detail):
            return "cannot read \(path) (\(key)): \(detail)"
        case let .noTrainingImages(path, key):
            return "\(path) (\(key)) keeps no training image"
        case let .categoriesDiffer(train, val):
            return "\(train) (\(RunSettings.Data.Key.trainAnnotations)) and \(val) (\(RunSettings.Data.Key.valAnnotations)) "
                + "list different categories"
        }
    }
}

/// The detection data of typed run settings: the training and validation indexes, their batch assemblers, the
/// training sampler and the loaders.
///
/// - training: `data.train_annotations` read with mmdetection's training filters (`data.filter_empty_gt`, images
///   under 32 px on the shorter side dropped), images from `data.train_images`, the `data.pipeline` transforms; the
///   first `data.max_train_samples` images when that is > 0; global batches of `train.batch_size` from the one
///   `DistributedSampler`, grouped by orientation.
/// - validation: `data.val_annotations` in test mode (every image), images from `data.val_images`, the test pipeline;
///   the first `data.max_test_samples` images when > 0; global batches of `eval.test_batch_size` in dataset order.
///
/// Paths are relative to `data.root` unless absolute. Both assemblers normalise with `data.mean`/`data.std` (pixel/255
/// units, one value or three) or mmdetection's ImageNet statistics when empty, and replace unusable images when
/// `data.skip_bad_images`; the loaders decode and transform on `data.num_workers` threads per rank. Every sample
/// is a function of (seed, epoch, image), so the batches do not depend on the number of ranks or workers.
public struct DetectionDataSetup {
    /// The minimum shorter side of a training image (mmdetection's `min_size=32`).
    public static let minimumTrainingImageSize = 32

    public let trainIndex: COCODetectionIndex
    public let valIndex: COCODetectionIndex
    /// Training: the configured pipeline. Validation: the test pipeline.
    public let train: DetectionBatchAssembler
    public let val: DetectionBatchAssembler
    /// The orientation group of each of the first `trainCount` training images (what global batches are grouped by).
    public let trainGroups: [Int]
    /// The training sampler (over `trainGroups`).
    public let sampler: DistributedSampler
    /// Images used of each index (`data.max_train_samples`, `data.max_test_samples`).
    public let trainCount: Int
    public let valCount: Int
    /// GLOBAL validation batch (`eval.test_batch_size`).
    public let valBatchSize: Int
    /// Decode/transform threads per rank (`data.num_workers`).
    public let numWorkers: Int
    /// The instances files (`data.train_annotations`, `data.val_annotations` resolved against `data.root`); the
    /// validation file is the ground truth of the evaluation.
    public let trainAnnotationsPath: String
    public let valAnnotationsPath: String
    /// `<dataset>/<image directory>` of each split, for logs (`fmnist_det/train`).
    public let trainDescription: String
    public let valDescription: String

    /// Reads both indexes from the configured files and builds the data (`readIndexes`, then
    /// `init(_:trainIndex:valIndex:)`).
    public init(_ s: RunSettings) throws {
        let (train, val) = try Self.readIndexes(s)
        try self.init(s, trainIndex: train, valIndex: val)
    }

    /// The data of `s` over indexes already read (for example read by one rank and received by the others).
    /// Checks that the image directories exist, that the indexes list the same categories, and that an AdaMixer
    /// model has as many classes as they do.
    public init(_ s: RunSettings, trainIndex: COCODetectionIndex, valIndex: COCODetectionIndex) throws {
        let data = s.data
        typealias Key = RunSettings.Data.Key
        guard data.dataset.isDetection else { throw DetectionDataError.notDetection(dataset: data.dataset.rawValue) }
        try Self.requireExisting(data.path(data.trainImages), key: Key.trainImages, directory: true, data)
        try Self.requireExisting(data.path(data.valImages), key: Key.valImages, directory: true, data)
        guard trainIndex.categoryIDs == valIndex.categoryIDs else {
            throw DetectionDataError.categoriesDiffer(train: data.path(data.trainAnnotations), val: data.path(data.valAnnotations))
        }
        if s.model.type == .adamixer && s.model.adamixer.numClasses != trainIndex.classCount {
            throw TrainingError.modelDataMismatch(
                key: RunSettings.Model.AdaMixer.Key.numClasses,
                detail: "the model has \(s.model.adamixer.numClasses) classes, \(data.path(data.trainAnnotations)) has \(trainIndex.classCount)")
        }
        trainCount = data.maxTrainSamples > 0 ? min(data.maxTrainSamples, trainIndex.count) : trainIndex.count
        valCount = data.maxTestSamples > 0 ? min(data.maxTestSamples, valIndex.count) : valIndex.count
        guard trainCount > 0 else {
            throw DetectionDataError.noTrainingImages(path: data.path(data.trainAnnotations), key: Key.trainAnnotations)
        }
        let normalization = try Self.normalization(data)
        self.trainIndex = trainIndex
        self.valIndex = valIndex
        train = DetectionBatchAssembler(index: trainIndex, imageDirectory: data.path(data.trainImages),
                                        pipeline: Self.pipeline(data), seed: s.seed, normalization: normalization,
                                        skipBadImages: data.skipBadImages)
        val = DetectionBatchAssembler(index: valIndex, imageDirectory: data.path(data.valImages), pipeline: Self.testPipeline(data), seed: s.seed,
                                      normalization: normalization, skipBadImages: data.skipBadImages)
        trainGroups = DistributedSampler.orientationGroups(widths: Array(trainIndex.widths.prefix(trainCount)),
                                                           heights: Array(trainIndex.heights.prefix(trainCount)))
        sampler = DistributedSampler(groups: trainGroups, globalBatchSize: s.train.batchSize, seed: s.seed)
        valBatchSize = s.eval.testBatchSize
        numWorkers = data.numWorkers
        trainAnnotationsPath = data.path(data.trainAnnotations)
        valAnnotationsPath = data.path(data.valAnnotations)
        trainDescription = "\(data.dataset.rawValue)/\(data.trainImages)"
        valDescription = "\(data.dataset.rawValue)/\(data.valImages)"
    }

    /// The training index (`data.train_annotations`, training filters) and the validation index
    /// (`data.val_annotations`, test mode) of `s`. A missing file names its path and key (and, for `fmnist_det`, the
    /// command that makes the set); a malformed one also names the line and column.
    ///
    /// Collective over `communicator`: rank 0 parses each file and broadcasts the index (`COCODetectionIndex.load`), so
    /// an error there is thrown on every rank.
    public static func readIndexes(_ s: RunSettings, communicator: any Communicator = LocalCommunicator())
        throws -> (train: COCODetectionIndex, val: COCODetectionIndex) {
        let data = s.data
        typealias Key = RunSettings.Data.Key
        guard data.dataset.isDetection else { throw DetectionDataError.notDetection(dataset: data.dataset.rawValue) }
        let trainOptions = COCODetectionIndex.Options(filterEmptyGT: data.filterEmptyGT, minImageSize: minimumTrainingImageSize)
        let train = try readIndex(data.path(data.trainAnnotations), key: Key.trainAnnotations, options: trainOptions, data,
                                  communicator: communicator)
        let val = try readIndex(data.path(data.valAnnotations), key: Key.valAnnotations, options: .test, data,
                                communicator: communicator)
        return (train, val)
    }

    /// Only the validation index of `s` (test mode), for an evaluation. Collective, as `readIndexes`.
    public static func readValidationIndex(_ s: RunSettings, communicator: any Communicator = LocalCommunicator()) throws -> COCODetectionIndex {
        let data = s.data
        guard data.dataset.isDetection else { throw DetectionDataError.notDetection(dataset: data.dataset.rawValue) }
        return try readIndex(data.path(data.valAnnotations), key: RunSettings.Data.Key.valAnnotations, options: .test, data,
                             communicator: communicator)
    }

    private static func readIndex(_ path: String, key: String, options: COCODetectionIndex.Options,
                                  _ data: RunSettings.Data, communicator: any Communicator) throws -> COCODetectionIndex {
        try requireExisting(path, key: key, directory: false, data)
        do {
            return try COCODetectionIndex.load(path: path, options: options, communicator: communicator)
        } catch {
            throw DetectionDataError.unreadable(path: path, key: key, detail: "\(error)")
        }
    }

    private static func requireExisting(_ path: String, key: String, directory: Bool, _ data: RunSettings.Data) throws {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue == directory else {
            throw DetectionDataError.missing(path: path, key: key, hint: makeHint(data))
        }
    }

    /// How to make the configured set, where a command makes it.
    public static func makeHint(_ data: RunSettings.Data) -> String? {
        guard data.dataset == .fmnistDet else { return nil }
        return "the \(data.dataset.rawValue) set is made by `lors make-detection --out \(data.root)`"
    }

    /// The training pipeline of `data.pipeline` at `data.img_scale`.
    public static func pipeline(_ data: RunSettings.Data) -> DetectionPipeline {
        switch data.pipeline {
        case .standard: return DetectionPipeline(.standard, longSide: data.imgScale[0], shortSide: data.imgScale[1])
        case .multiscaleCrop: return DetectionPipeline(.multiscaleCrop, longSide: data.imgScale[0], shortSide: data.imgScale[1])
        }
    }

    /// The test pipeline at `data.img_scale`.
    public static func testPipeline(_ data: RunSettings.Data) -> DetectionPipeline {
        DetectionPipeline(.test, longSide: data.imgScale[0], shortSide: data.imgScale[1])
    }

    /// `data.mean`/`data.std` (pixel/255, one value or one per RGB channel) in pixel units, or mmdetection's ImageNet
    /// statistics when empty.
    public static func normalization(_ data: RunSettings.Data) throws -> DetectionNormalization {
        guard !data.mean.isEmpty else { return .imagenet }
        for (key, values) in [(RunSettings.Data.Key.mean, data.mean), (RunSettings.Data.Key.std, data.std)]
            where values.count != 1 && values.count != 3 {
            throw TrainingError.modelDataMismatch(key: key, detail: "\(values.count) values for 3 (RGB) channels")
        }
        func rgb(_ values: [Double]) -> [Float] { (values.count == 1 ? Array(repeating: values[0], count: 3) : values).map { Float($0 * 255) } }
        return DetectionNormalization(mean: rgb(data.mean), std: rgb(data.std))
    }

    /// Training global batches per epoch.
    public var batchesPerEpoch: Int { sampler.batchesPerEpoch }

    /// Rank `rank`'s loader of the training batches of `epoch`, from global batch `firstBatch` on (a resumed epoch).
    public func trainLoader(epoch: Int, firstBatch: Int = 0, rank: Int = 0, worldSize: Int = 1, prefetch: Int = 2) -> DetectionLoader {
        DetectionLoader(assembler: train, globalBatches: Array(sampler.batches(epoch: epoch).dropFirst(firstBatch)), epoch: epoch,
                        rank: rank, worldSize: worldSize, numWorkers: numWorkers, prefetch: prefetch)
    }

    /// The validation global batches: the first `valCount` images in dataset order, `valBatchSize` each (the last
    /// one shorter).
    public var valBatches: [[Int]] {
        DistributedSampler.evaluationBatches(count: valCount, batchSize: valBatchSize).map { Array($0) }
    }

    /// Rank `rank`'s loader of the validation batches.
    public func valLoader(rank: Int = 0, worldSize: Int = 1, prefetch: Int = 2) -> DetectionLoader {
        DetectionLoader(assembler: val, globalBatches: valBatches, epoch: 0, rank: rank, worldSize: worldSize,
                        numWorkers: numWorkers, prefetch: prefetch)
    }
}
