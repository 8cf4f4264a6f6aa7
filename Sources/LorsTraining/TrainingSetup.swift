import Foundation
import LorsConfig
import LorsData
import LorsDistributed
import LorsModels
import LorsNN
import LorsOptim
import LorsTensor

/// Maps typed run settings (`RunSettings`, decoded once from the validated config) to the loop's parts: data, model,
/// optimizer, LR schedule, loop settings. Each piece is a separate function so the distributed and checkpoint code can
/// reuse them.
public enum TrainingSetup {
    /// The `data.dataset` values each `model.type` trains and evaluates on: the ViT classifies images, AdaMixer detects
    /// objects in COCO-format sets.
    public static func trainableDatasets(_ model: RunSettings.Model.Kind) -> [RunSettings.Data.Dataset] {
        switch model {
        case .vit: return [.fashionMNIST, .cifar100, .synthetic]
        case .adamixer: return RunSettings.Data.Dataset.allCases.filter(\.isDetection)
        }
    }

    /// Throws `TrainingError.unsupported` naming `data.dataset` unless `model.type` trains on it
    /// (`trainableDatasets`). Call it before reading any data or checkpoint.
    public static func checkTrainable(_ s: RunSettings) throws {
        let datasets = trainableDatasets(s.model.type)
        guard datasets.contains(s.data.dataset) else {
            throw TrainingError.unsupported(key: RunSettings.Data.Key.dataset, value: s.data.dataset.rawValue,
                                            supported: datasets.map(\.rawValue), model: s.model.type.rawValue)
        }
    }

    /// The training and test sets of `data.*` (subsets by `data.max_*_samples`), checked against `model.vit.*`.
    /// Refuses an untrainable model or dataset (`checkTrainable`) before loading anything.
    public static func datasets(_ s: RunSettings) throws -> (train: ImageDataset, test: ImageDataset) {
        try checkTrainable(s)
        let data = s.data, vit = s.model.vit
        let root = data.root
        let trainLimit = data.maxTrainSamples, testLimit = data.maxTestSamples
        var train: ImageDataset, test: ImageDataset
        switch data.dataset {
        case .fashionMNIST:
            train = try FashionMNIST.load(root: root, split: "train")
            test = try FashionMNIST.load(root: root, split: "test")
        case .cifar100:
            train = try CIFAR100.load(root: root, split: "train")
            test = try CIFAR100.load(root: root, split: "test")
        case .synthetic:
            train = .synthetic(name: "synthetic/train", count: trainLimit > 0 ? trainLimit : 1024, channels: vit.inChannels,
                               size: vit.imageSize, classes: vit.numClasses, seed: s.seed)
            test = .synthetic(name: "synthetic/test", count: testLimit > 0 ? testLimit : 256, channels: vit.inChannels,
                              size: vit.imageSize, classes: vit.numClasses, seed: s.seed)
        case .coco, .fmnistDet:
            throw TrainingError.unsupported(key: RunSettings.Data.Key.dataset, value: data.dataset.rawValue,
                                            supported: trainableDatasets(.vit).map(\.rawValue), model: RunSettings.Model.Kind.vit.rawValue)
        }
        train = train.prefix(trainLimit)
        test = test.prefix(testLimit)
        typealias Key = RunSettings.Model.ViT.Key
        let checks: [(String, Int, Int)] = [
            (Key.inChannels, vit.inChannels, train.channels),
            (Key.imageSize, vit.imageSize, train.height),
            (Key.imageSize, vit.imageSize, train.width),
            (Key.numClasses, vit.numClasses, train.classes),
        ]
        for (key, model, data) in checks where model != data {
            throw TrainingError.modelDataMismatch(key: key, detail: "the model has \(model), \(train.name) has \(data)")
        }
        return (train, test)
    }

    /// The task of `s` with its data and its model, initialised from `seed` (which also names every tensor by its
    /// dotted path: the optimizer and checkpoint keys): image classification for the ViT, detection for AdaMixer.
    /// Collective for detection (rank 0 reads the instances files for the group). `workDirectory` receives the
    /// detector's COCO results files (`eval/`).
    public static func task(_ s: RunSettings, communicator: any Communicator = LocalCommunicator(),
                            workDirectory: String) throws -> any TrainingTask {
        try checkTrainable(s)
        switch s.model.type {
        case .vit: return try classificationTask(s)
        case .adamixer: return try detectionTask(s, communicator: communicator, workDirectory: workDirectory)
        }
    }

    /// The detection task of `s`: the data of `data.*` (indexes read by rank 0 and broadcast) and the AdaMixer of
    /// `model.adamixer.*`, initialised from `seed` (then the backbone's `pretrained` weights, if any).
    public static func detectionTask(_ s: RunSettings, communicator: any Communicator = LocalCommunicator(),
                                     workDirectory: String) throws -> DetectionTask {
        try checkTrainable(s)
        let (train, val) = try DetectionDataSetup.readIndexes(s, communicator: communicator)
        let data = try DetectionDataSetup(s, trainIndex: train, valIndex: val)
        return try DetectionTask(model: ModelBuilder.initializedAdaMixer(s.model.adamixer, seed: s.seed), data: data,
                                 maxPerImage: s.model.adamixer.test.maxPerImage, workDirectory: workDirectory)
    }

    /// The task `lors eval` runs: the model of `s` (initialised; a checkpoint is loaded into it next) and only what
    /// its evaluation reads — the test set for the ViT, the validation instances file for AdaMixer. Collective for
    /// detection.
    public static func evaluationTask(_ s: RunSettings, communicator: any Communicator = LocalCommunicator(),
                                      workDirectory: String) throws -> any TrainingTask {
        try checkTrainable(s)
        switch s.model.type {
        case .vit:
            let (trainSet, testSet) = try datasets(s)
            let normalization = try normalization(s.data, channels: trainSet.channels)
            let testData = BatchAssembler(dataset: testSet, normalization: normalization, seed: s.seed)
            let model = ModelBuilder.vit(s.model)
            model.initializeParameters(seed: s.seed)
            return ClassificationTask(model: model, trainData: testData, testData: testData)
        case .adamixer:
            let val = try DetectionDataSetup.readValidationIndex(s, communicator: communicator)
            let data = try DetectionDataSetup(s, trainIndex: val, valIndex: val)
            return try DetectionTask(model: ModelBuilder.initializedAdaMixer(s.model.adamixer, seed: s.seed), data: data,
                                     maxPerImage: s.model.adamixer.test.maxPerImage, workDirectory: workDirectory)
        }
    }

    /// The classification task of `s` (ViT).
    public static func classificationTask(_ s: RunSettings) throws -> ClassificationTask {
        let (trainSet, testSet) = try datasets(s)
        let normalization = try normalization(s.data, channels: trainSet.channels)
        let trainData = BatchAssembler(dataset: trainSet, normalization: normalization, augmentation: augmentation(s.data.augmentation),
                                       mixing: mixing(s.data.augmentation), seed: s.seed)
        let testData = BatchAssembler(dataset: testSet, normalization: normalization, seed: s.seed)
        let model = ModelBuilder.vit(s.model)
        model.initializeParameters(seed: s.seed)
        return ClassificationTask(model: model, trainData: trainData, testData: testData,
                                  labelSmoothing: Float(s.data.augmentation.labelSmoothing))
    }

    /// `data.mean` / `data.std`, or the dataset's own statistics when empty.
    public static func normalization(_ data: RunSettings.Data, channels: Int) throws -> Normalization {
        let mean = data.mean, std = data.std
        if !mean.isEmpty {
            guard mean.count == 1 || mean.count == channels else {
                throw TrainingError.modelDataMismatch(key: RunSettings.Data.Key.mean, detail: "\(mean.count) values for \(channels) channels")
            }
            return Normalization(mean: mean.map(Float.init), std: std.map(Float.init)).expanded(to: channels)
        }
        switch data.dataset {
        case .fashionMNIST: return .fashionMNIST
        case .cifar100: return .cifar100
        case .synthetic, .coco, .fmnistDet: return .centered(channels: channels)
        }
    }

    /// Per-sample augmentation of `data.augmentation.*`.
    public static func augmentation(_ a: RunSettings.Data.Augmentation) -> SampleAugmentation {
        SampleAugmentation(randomFlip: a.randomFlip, cropPadding: a.randomCropPadding)
    }

    /// Mixup/CutMix of `data.augmentation.*`.
    public static func mixing(_ a: RunSettings.Data.Augmentation) -> BatchMixing {
        BatchMixing(mixupAlpha: a.mixupAlpha, cutmixAlpha: a.cutmixAlpha, mixProb: a.mixProb, switchProb: a.switchProb)
    }

    /// The LR schedule of `lr_schedule.*`, `optimizer.lr` and `train.epochs` (docs/interfaces.md):
    /// linear warmup by iteration (`warmup_epochs` × iterations per epoch when > 0, else `warmup_iters`),
    /// then `step` (milestones in 0-based epochs, factor `gamma`), `cosine` or `constant`.
    public static func schedule(_ s: RunSettings, iterationsPerEpoch: Int) -> LRSchedule {
        let schedule = s.schedule
        let policy: LRSchedule.Policy
        switch schedule.policy {
        case .step: policy = .step(milestones: schedule.milestones, gamma: schedule.gamma)
        case .cosine:
            policy = .cosine(minLRRatio: schedule.minLRRatio, progress: schedule.cosineBy == .epoch ? .epoch : .iteration)
        case .constant: policy = .constant
        }
        let warmup = schedule.warmupEpochs > 0 ? schedule.warmupEpochs * iterationsPerEpoch : schedule.warmupIters
        return LRSchedule(baseLearningRate: s.optimizer.lr, policy: policy, epochs: s.train.epochs,
                          iterationsPerEpoch: iterationsPerEpoch, warmupIterations: warmup,
                          warmupRatio: schedule.warmupRatio)
    }

    /// Name patterns of the `optimizer.no_decay_on` categories.
    public static func noDecayPatterns(_ categories: [RunSettings.Optimizer.NoDecay]) -> [String] {
        categories.map { category -> String in
            switch category {
            case .norm: return "*norm*"
            case .bias: return "bias"
            case .embedding: return "*embedding*"
            case .clsToken: return "cls_token"
            case .posEmbed: return "pos_embed"
            }
        }
    }

    /// The optimizer of `optimizer.*` over `model`'s trainable parameters: a `decay` group and,
    /// when `optimizer.no_decay_on` is not empty, a `no_decay` group with weight decay 0.
    public static func optimizer(_ o: RunSettings.Optimizer, model: Module) -> any Optimizer {
        let named = model.namedParameters().filter { $0.1.requiresGrad }.map { (name: $0.0, parameter: $0.1) }
        let rules = o.noDecayOn.isEmpty ? [] : [ParameterGroupRule.noDecay(patterns: noDecayPatterns(o.noDecayOn))]
        let groups = ParameterGroup.grouped(named, rules: rules)
        switch o.type {
        case .sgd:
            return SGD(groups: groups, learningRate: o.lr, momentum: o.momentum, weightDecay: o.weightDecay, nesterov: o.nesterov)
        case .adamw:
            return AdamW(groups: groups, learningRate: o.lr, beta1: o.beta1, beta2: o.beta2, epsilon: o.eps,
                         weightDecay: o.weightDecay)
        }
    }

    /// Loop settings of `train.*`, `eval.*` and `seed`.
    public static func settings(_ s: RunSettings) -> TrainerSettings {
        var t = TrainerSettings(batchSize: s.train.batchSize, epochs: s.train.epochs, maxSteps: s.train.maxSteps)
        t.accumulationSteps = s.train.accumulationSteps
        t.gradientClip = s.train.gradClip
        t.seed = s.seed
        t.evalIntervalEpochs = s.eval.intervalEpochs
        t.evalBatchSize = s.eval.testBatchSize
        switch s.train.nonfinite {
        case .skip: t.nonFinite = .skip
        case .stop: t.nonFinite = .stop
        }
        t.maxNonFiniteSteps = s.train.maxNonfiniteSteps
        return t
    }
}
