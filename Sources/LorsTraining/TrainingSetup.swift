import Foundation
import LorsConfig
import LorsData
import LorsModels
import LorsNN
import LorsOptim
import LorsTensor

/// Maps a validated config to the loop's parts: data, model, optimizer, LR schedule, settings.
/// Each piece is a separate function so the distributed and checkpoint code can reuse them.
public enum TrainingSetup {
    /// The training and test sets of `data.*` (subsets by `data.max_*_samples`), checked against `model.vit.*`.
    public static func datasets(_ c: Config) throws -> (train: ImageDataset, test: ImageDataset) {
        let root = c.string("data.root")
        let trainLimit = c.int("data.max_train_samples"), testLimit = c.int("data.max_test_samples")
        var train: ImageDataset, test: ImageDataset
        switch c.string("data.dataset") {
        case "fashion_mnist":
            train = try FashionMNIST.load(root: root, split: "train")
            test = try FashionMNIST.load(root: root, split: "test")
        case "cifar100":
            train = try CIFAR100.load(root: root, split: "train")
            test = try CIFAR100.load(root: root, split: "test")
        case "synthetic":
            let channels = c.int("model.vit.in_channels"), size = c.int("model.vit.image_size")
            let classes = c.int("model.vit.num_classes"), seed = UInt64(c.int("seed"))
            train = .synthetic(name: "synthetic/train", count: trainLimit > 0 ? trainLimit : 1024, channels: channels,
                               size: size, classes: classes, seed: seed)
            test = .synthetic(name: "synthetic/test", count: testLimit > 0 ? testLimit : 256, channels: channels,
                              size: size, classes: classes, seed: seed)
        case let other:
            throw TrainingError.unsupported(key: "data.dataset", value: other)
        }
        train = train.prefix(trainLimit)
        test = test.prefix(testLimit)
        guard c.string("model.type") == "vit" else { throw TrainingError.unsupported(key: "model.type", value: c.string("model.type")) }
        let checks: [(String, Int, Int)] = [
            ("model.vit.in_channels", c.int("model.vit.in_channels"), train.channels),
            ("model.vit.image_size", c.int("model.vit.image_size"), train.height),
            ("model.vit.image_size", c.int("model.vit.image_size"), train.width),
            ("model.vit.num_classes", c.int("model.vit.num_classes"), train.classes),
        ]
        for (key, model, data) in checks where model != data {
            throw TrainingError.modelDataMismatch(key: key, detail: "the model has \(model), \(train.name) has \(data)")
        }
        return (train, test)
    }

    /// The task of `config` with its data and its model, initialised from `seed` (which also names every tensor by
    /// its dotted path: the optimizer and checkpoint keys).
    public static func task(_ c: Config) throws -> ClassificationTask {
        let (trainSet, testSet) = try datasets(c)
        let normalization = try normalization(c, channels: trainSet.channels)
        let seed = UInt64(c.int("seed"))
        let trainData = BatchAssembler(dataset: trainSet, normalization: normalization, augmentation: augmentation(c),
                                       mixing: mixing(c), seed: seed)
        let testData = BatchAssembler(dataset: testSet, normalization: normalization, seed: seed)
        let model = ModelBuilder.vit(c)
        model.initializeParameters(seed: seed)
        return ClassificationTask(model: model, trainData: trainData, testData: testData,
                                  labelSmoothing: Float(c.double("data.augmentation.label_smoothing")))
    }

    /// `data.mean` / `data.std`, or the dataset's own statistics when empty.
    public static func normalization(_ c: Config, channels: Int) throws -> Normalization {
        let mean = c.doubleList("data.mean"), std = c.doubleList("data.std")
        if !mean.isEmpty {
            guard mean.count == 1 || mean.count == channels else {
                throw TrainingError.modelDataMismatch(key: "data.mean", detail: "\(mean.count) values for \(channels) channels")
            }
            return Normalization(mean: mean.map(Float.init), std: std.map(Float.init)).expanded(to: channels)
        }
        switch c.string("data.dataset") {
        case "fashion_mnist": return .fashionMNIST
        case "cifar100": return .cifar100
        default: return .centered(channels: channels)
        }
    }

    /// Per-sample augmentation of `data.augmentation.*`.
    public static func augmentation(_ c: Config) -> SampleAugmentation {
        SampleAugmentation(randomFlip: c.bool("data.augmentation.random_flip"),
                           cropPadding: c.int("data.augmentation.random_crop_padding"))
    }

    /// Mixup/CutMix of `data.augmentation.*`.
    public static func mixing(_ c: Config) -> BatchMixing {
        BatchMixing(mixupAlpha: c.double("data.augmentation.mixup_alpha"), cutmixAlpha: c.double("data.augmentation.cutmix_alpha"),
                    mixProb: c.double("data.augmentation.mix_prob"), switchProb: c.double("data.augmentation.switch_prob"))
    }

    /// The LR schedule of `lr_schedule.*`, `optimizer.lr` and `train.epochs` (docs/interfaces.md):
    /// linear warmup by iteration (`warmup_epochs` × iterations per epoch when > 0, else `warmup_iters`),
    /// then `step` (milestones in 0-based epochs, factor `gamma`), `cosine` or `constant`.
    public static func schedule(_ c: Config, iterationsPerEpoch: Int) -> LRSchedule {
        let policy: LRSchedule.Policy
        switch c.string("lr_schedule.policy") {
        case "step": policy = .step(milestones: c.intList("lr_schedule.milestones"), gamma: c.double("lr_schedule.gamma"))
        case "cosine":
            policy = .cosine(minLRRatio: c.double("lr_schedule.min_lr_ratio"),
                             progress: c.string("lr_schedule.cosine_by") == "epoch" ? .epoch : .iteration)
        default: policy = .constant
        }
        let warmupEpochs = c.int("lr_schedule.warmup_epochs")
        let warmup = warmupEpochs > 0 ? warmupEpochs * iterationsPerEpoch : c.int("lr_schedule.warmup_iters")
        return LRSchedule(baseLearningRate: c.double("optimizer.lr"), policy: policy, epochs: c.int("train.epochs"),
                          iterationsPerEpoch: iterationsPerEpoch, warmupIterations: warmup,
                          warmupRatio: c.double("lr_schedule.warmup_ratio"))
    }

    /// Name patterns of the `optimizer.no_decay_on` categories.
    public static func noDecayPatterns(_ categories: [String]) -> [String] {
        categories.flatMap { category -> [String] in
            switch category {
            case "norm": return ["*norm*"]
            case "bias": return ["bias"]
            case "embedding": return ["*embedding*"]
            case "cls_token": return ["cls_token"]
            case "pos_embed": return ["pos_embed"]
            default: return [category]
            }
        }
    }

    /// The optimizer of `optimizer.*` over `model`'s trainable parameters: a `decay` group and,
    /// when `optimizer.no_decay_on` is not empty, a `no_decay` group with weight decay 0.
    public static func optimizer(_ c: Config, model: Module) -> any Optimizer {
        let named = model.namedParameters().filter { $0.1.requiresGrad }.map { (name: $0.0, parameter: $0.1) }
        let categories = c.stringList("optimizer.no_decay_on")
        let rules = categories.isEmpty ? [] : [ParameterGroupRule.noDecay(patterns: noDecayPatterns(categories))]
        let groups = ParameterGroup.grouped(named, rules: rules)
        let lr = c.double("optimizer.lr"), wd = c.double("optimizer.weight_decay")
        switch c.string("optimizer.type") {
        case "sgd":
            return SGD(groups: groups, learningRate: lr, momentum: c.double("optimizer.momentum"), weightDecay: wd,
                       nesterov: c.bool("optimizer.nesterov"))
        default:
            let betas = c.doubleList("optimizer.betas")
            return AdamW(groups: groups, learningRate: lr, beta1: betas[0], beta2: betas[1], epsilon: c.double("optimizer.eps"),
                         weightDecay: wd)
        }
    }

    /// Loop settings of `train.*`, `eval.*` and `seed`.
    public static func settings(_ c: Config) -> TrainerSettings {
        var s = TrainerSettings(batchSize: c.int("train.batch_size"), epochs: c.int("train.epochs"),
                                maxSteps: c.optionalInt("train.max_steps"))
        s.accumulationSteps = c.int("train.accumulation_steps")
        s.gradientClip = c.optionalDouble("train.grad_clip")
        s.seed = UInt64(c.int("seed"))
        s.evalIntervalEpochs = c.int("eval.interval_epochs")
        s.evalBatchSize = c.int("eval.test_batch_size")
        s.nonFinite = NonFinitePolicy(rawValue: c.string("train.nonfinite")) ?? .skip
        s.maxNonFiniteSteps = c.int("train.max_nonfinite_steps")
        return s
    }
}
