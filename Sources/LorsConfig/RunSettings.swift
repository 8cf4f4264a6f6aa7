// Typed settings of a lors run, decoded once from a validated `Config` (schema `ConfigSchema.lors`).
//
// Code outside LorsConfig reads these structs, never key paths. Each struct lists its keys in a nested `Key` enum
// (for error messages that name a key); `RunSettings.init(_:)` (in `RunSettings+Decoding.swift`) is the only code
// that reads a `Config` by key path. `lr_schedule.preset` has no field: the loader expands it into `train.epochs`,
// `lr_schedule.policy` and `lr_schedule.milestones`.

/// Every setting of a run, one nested struct per schema section.
public struct RunSettings: Sendable, Equatable {
    /// Key paths of the top-level fields.
    public enum Key {
        public static let seed = "seed"
    }

    /// `seed`: seed of the counter-based RNG (init, shuffle, augmentation, dropout).
    public var seed: UInt64
    /// `model.*`.
    public var model: Model
    /// `data.*`.
    public var data: Data
    /// `train.*`.
    public var train: Train
    /// `optimizer.*`.
    public var optimizer: Optimizer
    /// `lr_schedule.*`.
    public var schedule: Schedule
    /// `eval.*`.
    public var eval: Eval
    /// `log.*`.
    public var log: Log
    /// `checkpoint.*`.
    public var checkpoint: Checkpoint
    /// `dist.*`.
    public var dist: Dist
}

// MARK: - model

extension RunSettings {
    /// `model.*`: which model, and the settings of each family.
    public struct Model: Sendable, Equatable {
        public enum Key {
            public static let type = "model.type"
        }

        /// `model.type`.
        public enum Kind: String, Sendable, CaseIterable {
            case vit
            case adamixer
        }

        /// `model.type`: which model to build.
        public var type: Kind
        /// `model.vit.*`.
        public var vit: ViT
        /// `model.lors.*` (LORST in the ViT's linears).
        public var lors: LORS
        /// `model.adamixer.*`.
        public var adamixer: AdaMixer
    }
}

extension RunSettings.Model {
    /// `model.vit.*`: the DeiT-style vision transformer.
    public struct ViT: Sendable, Equatable {
        public enum Key {
            public static let imageSize = "model.vit.image_size"
            public static let inChannels = "model.vit.in_channels"
            public static let patchSize = "model.vit.patch_size"
            public static let numClasses = "model.vit.num_classes"
            public static let embedDim = "model.vit.embed_dim"
            public static let depth = "model.vit.depth"
            public static let numHeads = "model.vit.num_heads"
            public static let mlpRatio = "model.vit.mlp_ratio"
            public static let qkvBias = "model.vit.qkv_bias"
            public static let dropRate = "model.vit.drop_rate"
            public static let attnDropRate = "model.vit.attn_drop_rate"
            public static let dropPathRate = "model.vit.drop_path_rate"
            public static let layerNormEps = "model.vit.layer_norm_eps"
        }

        public var imageSize: Int
        public var inChannels: Int
        public var patchSize: Int
        public var numClasses: Int
        public var embedDim: Int
        public var depth: Int
        public var numHeads: Int
        public var mlpRatio: Double
        public var qkvBias: Bool
        public var dropRate: Double
        public var attnDropRate: Double
        public var dropPathRate: Double
        public var layerNormEps: Double
    }

    /// `model.lors.*`: LORST on the transformer linears.
    public struct LORS: Sendable, Equatable {
        public enum Key {
            public static let enabled = "model.lors.enabled"
            public static let rank = "model.lors.rank"
            public static let attnGroups = "model.lors.attn_groups"
            public static let ffnGroups = "model.lors.ffn_groups"
            public static let targets = "model.lors.targets"
        }

        /// An entry of `model.lors.targets`: a linear of each block.
        public enum Target: String, Sendable, CaseIterable {
            case qkv, proj, fc1, fc2
        }

        public var enabled: Bool
        public var rank: Int
        /// Groups per block for qkv and proj.
        public var attnGroups: [Int]
        /// Groups per block for fc1 and fc2.
        public var ffnGroups: [Int]
        public var targets: [Target]
    }

    /// `model.adamixer.*`: the AdaMixer query-based detector.
    public struct AdaMixer: Sendable, Equatable {
        public enum Key {
            public static let numQueries = "model.adamixer.num_queries"
            public static let numStages = "model.adamixer.num_stages"
            public static let contentDim = "model.adamixer.content_dim"
            public static let feedforwardChannels = "model.adamixer.feedforward_channels"
            public static let numHeads = "model.adamixer.num_heads"
            public static let samplingGroups = "model.adamixer.sampling_groups"
            public static let inPoints = "model.adamixer.in_points"
            public static let outPoints = "model.adamixer.out_points"
            public static let numClasses = "model.adamixer.num_classes"
        }

        /// `model.adamixer.backbone.*`: the ResNet backbone.
        public struct Backbone: Sendable, Equatable {
            public enum Key {
                public static let depth = "model.adamixer.backbone.depth"
                public static let width = "model.adamixer.backbone.width"
                public static let norm = "model.adamixer.backbone.norm"
                public static let normGroups = "model.adamixer.backbone.norm_groups"
                public static let frozenStages = "model.adamixer.backbone.frozen_stages"
                public static let pretrained = "model.adamixer.backbone.pretrained"
            }

            /// `model.adamixer.backbone.norm`.
            public enum Norm: String, Sendable, CaseIterable {
                /// Eval-mode BatchNorm with frozen running statistics.
                case frozenBN = "frozen_bn"
                /// GroupNorm (`normGroups` groups) with a trainable affine.
                case groupNorm = "group_norm"
            }

            /// ResNet depth: 18, 34, 50 or 101.
            public var depth: Int
            /// Base width (64 = torchvision).
            public var width: Int
            public var norm: Norm
            /// GroupNorm groups (`norm` group_norm).
            public var normGroups: Int
            /// Stages with frozen weights: -1 = none, 0 = the stem, k = stem + layer1...layerk.
            public var frozenStages: Int
            /// Weights file with torchvision names; empty = none.
            public var pretrained: String
        }

        /// `model.adamixer.test.*`: evaluation.
        public struct Test: Sendable, Equatable {
            public enum Key {
                public static let maxPerImage = "model.adamixer.test.max_per_img"
            }

            /// Detections kept per image (top scores over queries x classes).
            public var maxPerImage: Int
        }

        /// `model.adamixer.backbone.*`.
        public var backbone: Backbone
        public var numQueries: Int
        public var numStages: Int
        public var contentDim: Int
        public var feedforwardChannels: Int
        public var numHeads: Int
        public var samplingGroups: Int
        public var inPoints: Int
        public var outPoints: Int
        public var numClasses: Int
        /// `model.adamixer.test.*`.
        public var test: Test
        /// `model.adamixer.lors.*`.
        public var lors: LORS

        /// `model.adamixer.lors.*`: LORSA/LORST in the decoder's mixing.
        public struct LORS: Sendable, Equatable {
            public enum Key {
                public static let enabled = "model.adamixer.lors.enabled"
                public static let lorsaRank = "model.adamixer.lors.lorsa_rank"
                public static let lorsaGroups = "model.adamixer.lors.lorsa_groups"
                public static let lorstRank = "model.adamixer.lors.lorst_rank"
                public static let lorstGroups = "model.adamixer.lors.lorst_groups"
                public static let sharedInit = "model.adamixer.lors.shared_init"
            }

            /// `model.adamixer.lors.shared_init`.
            public enum SharedInit: String, Sendable, CaseIterable {
                case official, paper
            }

            public var enabled: Bool
            public var lorsaRank: Int
            public var lorsaGroups: [Int]
            public var lorstRank: Int
            public var lorstGroups: [Int]
            public var sharedInit: SharedInit
        }
    }
}

// MARK: - data

extension RunSettings {
    /// `data.*`: dataset, normalisation, subsets and augmentation.
    public struct Data: Sendable, Equatable {
        public enum Key {
            public static let dataset = "data.dataset"
            public static let root = "data.root"
            public static let mean = "data.mean"
            public static let std = "data.std"
            public static let maxTrainSamples = "data.max_train_samples"
            public static let maxTestSamples = "data.max_test_samples"
            public static let numWorkers = "data.num_workers"
            public static let pipeline = "data.pipeline"
            public static let imgScale = "data.img_scale"
            public static let trainImages = "data.train_images"
            public static let trainAnnotations = "data.train_annotations"
            public static let valImages = "data.val_images"
            public static let valAnnotations = "data.val_annotations"
            public static let filterEmptyGT = "data.filter_empty_gt"
            public static let skipBadImages = "data.skip_bad_images"
        }

        /// `data.dataset`.
        public enum Dataset: String, Sendable, CaseIterable {
            case fashionMNIST = "fashion_mnist"
            case cifar100
            case coco
            /// The COCO-format set `lors make-detection` writes.
            case fmnistDet = "fmnist_det"
            case synthetic

            /// A COCO-format detection set (read through `data.train_*` / `data.val_*`).
            public var isDetection: Bool { self == .coco || self == .fmnistDet }
        }

        /// `data.pipeline`: the detection training pipeline.
        public enum Pipeline: String, Sendable, CaseIterable {
            case standard
            case multiscaleCrop = "multiscale_crop"
        }

        public var dataset: Dataset
        /// Dataset directory.
        public var root: String
        /// Per-channel mean of pixel/255; empty = the dataset's statistics.
        public var mean: [Double]
        /// Per-channel std of pixel/255; empty = the dataset's statistics.
        public var std: [Double]
        /// The first N training samples (0 = all).
        public var maxTrainSamples: Int
        /// The first N test samples (0 = all).
        public var maxTestSamples: Int
        /// `data.augmentation.*`.
        public var augmentation: Augmentation
        /// Detection: decode/transform threads per rank; 0 = on the training thread.
        public var numWorkers: Int
        /// Detection: the training pipeline (validation uses the test pipeline).
        public var pipeline: Pipeline
        /// Detection: `[long, short]` side limits of the keep-ratio resize (`data.img_scale`).
        public var imgScale: [Int]
        /// Detection: image directories and instances files, relative to `root` unless absolute (`Data.path(_:)`).
        public var trainImages: String
        public var trainAnnotations: String
        public var valImages: String
        public var valAnnotations: String
        /// Detection: drop training images that no annotation refers to.
        public var filterEmptyGT: Bool
        /// Detection: replace unusable images by blank ones without boxes instead of stopping.
        public var skipBadImages: Bool

        /// `path` resolved against `root`: as given when absolute, else `root/path`.
        public func path(_ path: String) -> String {
            path.hasPrefix("/") ? path : (root.hasSuffix("/") || root.isEmpty ? root + path : root + "/" + path)
        }

        /// `data.augmentation.*`.
        public struct Augmentation: Sendable, Equatable {
            public enum Key {
                public static let randomFlip = "data.augmentation.random_flip"
                public static let randomCropPadding = "data.augmentation.random_crop_padding"
                public static let mixupAlpha = "data.augmentation.mixup_alpha"
                public static let cutmixAlpha = "data.augmentation.cutmix_alpha"
                public static let mixProb = "data.augmentation.mix_prob"
                public static let switchProb = "data.augmentation.switch_prob"
                public static let labelSmoothing = "data.augmentation.label_smoothing"
            }

            public var randomFlip: Bool
            public var randomCropPadding: Int
            public var mixupAlpha: Double
            public var cutmixAlpha: Double
            public var mixProb: Double
            public var switchProb: Double
            public var labelSmoothing: Double
        }
    }
}

// MARK: - train, optimizer, lr_schedule

extension RunSettings {
    /// `train.*`: batch, length, clipping, threads, non-finite handling.
    public struct Train: Sendable, Equatable {
        public enum Key {
            public static let batchSize = "train.batch_size"
            public static let epochs = "train.epochs"
            public static let maxSteps = "train.max_steps"
            public static let gradClip = "train.grad_clip"
            public static let logInterval = "train.log_interval"
            public static let accumulationSteps = "train.accumulation_steps"
            public static let threads = "train.threads"
            public static let nonfinite = "train.nonfinite"
            public static let maxNonfiniteSteps = "train.max_nonfinite_steps"
        }

        /// `train.nonfinite`.
        public enum NonFinite: String, Sendable, CaseIterable {
            case skip, stop
        }

        /// GLOBAL batch.
        public var batchSize: Int
        public var epochs: Int
        /// nil = no limit.
        public var maxSteps: Int?
        /// nil = no clipping.
        public var gradClip: Double?
        public var logInterval: Int
        public var accumulationSteps: Int
        /// BLAS threads per rank; 0 = auto.
        public var threads: Int
        public var nonfinite: NonFinite
        public var maxNonfiniteSteps: Int
    }

    /// `optimizer.*`.
    public struct Optimizer: Sendable, Equatable {
        public enum Key {
            public static let type = "optimizer.type"
            public static let lr = "optimizer.lr"
            public static let weightDecay = "optimizer.weight_decay"
            public static let betas = "optimizer.betas"
            public static let eps = "optimizer.eps"
            public static let momentum = "optimizer.momentum"
            public static let nesterov = "optimizer.nesterov"
            public static let noDecayOn = "optimizer.no_decay_on"
        }

        /// `optimizer.type`.
        public enum Kind: String, Sendable, CaseIterable {
            case adamw, sgd
        }

        /// An entry of `optimizer.no_decay_on`: a kind of parameter that gets weight decay 0.
        public enum NoDecay: String, Sendable, CaseIterable {
            case norm, bias, embedding
            case clsToken = "cls_token"
            case posEmbed = "pos_embed"
        }

        public var type: Kind
        public var lr: Double
        public var weightDecay: Double
        /// AdamW β1 (`optimizer.betas[0]`).
        public var beta1: Double
        /// AdamW β2 (`optimizer.betas[1]`).
        public var beta2: Double
        public var eps: Double
        public var momentum: Double
        public var nesterov: Bool
        public var noDecayOn: [NoDecay]
    }

    /// `lr_schedule.*` (after the preset filled its keys).
    public struct Schedule: Sendable, Equatable {
        public enum Key {
            public static let policy = "lr_schedule.policy"
            public static let milestones = "lr_schedule.milestones"
            public static let gamma = "lr_schedule.gamma"
            public static let warmupIters = "lr_schedule.warmup_iters"
            public static let warmupRatio = "lr_schedule.warmup_ratio"
            public static let warmupEpochs = "lr_schedule.warmup_epochs"
            public static let minLRRatio = "lr_schedule.min_lr_ratio"
            public static let cosineBy = "lr_schedule.cosine_by"
        }

        /// `lr_schedule.policy`.
        public enum Policy: String, Sendable, CaseIterable {
            case step, cosine, constant
        }

        /// `lr_schedule.cosine_by`.
        public enum CosineBy: String, Sendable, CaseIterable {
            case iteration, epoch
        }

        public var policy: Policy
        /// step: 0-based epochs at which the LR is multiplied by `gamma`.
        public var milestones: [Int]
        public var gamma: Double
        public var warmupIters: Int
        public var warmupRatio: Double
        /// If > 0, the warmup length in epochs (takes precedence over `warmupIters`).
        public var warmupEpochs: Int
        public var minLRRatio: Double
        public var cosineBy: CosineBy
    }
}

// MARK: - eval, log, checkpoint, dist

extension RunSettings {
    /// `eval.*`.
    public struct Eval: Sendable, Equatable {
        public enum Key {
            public static let intervalEpochs = "eval.interval_epochs"
            public static let testBatchSize = "eval.test_batch_size"
        }

        public var intervalEpochs: Int
        /// GLOBAL evaluation batch.
        public var testBatchSize: Int
    }

    /// `log.*`.
    public struct Log: Sendable, Equatable {
        public enum Key {
            public static let tensorboard = "log.tensorboard"
            public static let console = "log.console"
            public static let level = "log.level"
        }

        /// `log.level`.
        public enum Level: String, Sendable, CaseIterable {
            case debug, info, warning, error
        }

        public var tensorboard: Bool
        public var console: Bool
        public var level: Level
    }

    /// `checkpoint.*`.
    public struct Checkpoint: Sendable, Equatable {
        public enum Key {
            public static let intervalSteps = "checkpoint.interval_steps"
            public static let keepLast = "checkpoint.keep_last"
        }

        /// Every this many optimizer steps; 0 = only at the end.
        public var intervalSteps: Int
        public var keepLast: Int
    }

    /// `dist.*`.
    public struct Dist: Sendable, Equatable {
        public enum Key {
            public static let bucketCapMB = "dist.bucket_cap_mb"
            public static let zero1 = "dist.zero1"
            public static let overlap = "dist.overlap"
        }

        /// Gradient all-reduce bucket size in MiB.
        public var bucketCapMB: Double
        /// Shard optimizer state across ranks (ZeRO stage 1).
        public var zero1: Bool
        /// Start bucket all-reduces during backward (false: all of them after backward).
        public var overlap: Bool
    }
}

// MARK: - resume

extension RunSettings {
    /// Keys that may differ between a checkpoint's stored config and the run resuming from it: stop condition,
    /// cadence of checkpoints, evaluation and logging, threads, and where the data lives (the pretrained backbone file
    /// too: it only initialises, the checkpoint holds the weights). Every other key must match.
    public static let keysAllowedToChangeOnResume: Set<String> = [
        Train.Key.maxSteps, Checkpoint.Key.intervalSteps, Checkpoint.Key.keepLast, Eval.Key.intervalEpochs,
        Train.Key.logInterval, Train.Key.threads, Log.Key.console, Log.Key.level, Log.Key.tensorboard,
        Eval.Key.testBatchSize, Data.Key.root, Data.Key.numWorkers, Model.AdaMixer.Backbone.Key.pretrained,
        Model.AdaMixer.Test.Key.maxPerImage, Dist.Key.bucketCapMB, Dist.Key.overlap,
    ]
}
