// The full list of config keys of lors, with types, ranges, defaults and meaning. Add new keys here.
//
// Each top-level section is built by one static property below; `ConfigSchema.lors` lists them in render order.
// Cross-key rules (checks involving several keys) are at the end of this file.
// To add a key: add one builder line to its section. To add a section: add a property and list it in `lorsSections`.

extension ConfigSchema {
    /// The schema of every lors config (`configs/*.yaml`, `--set`, and the config stored in checkpoints).
    public static let lors = ConfigSchema(lorsSections, presets: [lrSchedulePreset], rules: lorsRules,
                                          retiredKeys: Set(lorsRetiredKeys.keys), retiredKeyReplacements: lorsRetiredKeys)

    /// Keys earlier versions declared, each with the key that replaces it (stored configs of older checkpoints hold them).
    static var lorsRetiredKeys: [String: String] {
        [
            "model.adamixer.backbone": "model.adamixer.backbone.depth (50 for resnet50, 101 for resnet101; the backbone "
                + "is a section: depth, width, norm, norm_groups, frozen_stages, pretrained)",
            "model.adamixer.frozen_stages": "model.adamixer.backbone.frozen_stages",
        ]
    }

    /// Top-level nodes of `lors`, in render order.
    static var lorsSections: [SchemaNode] {
        [
            .int("seed", 0, .nonNegative, doc: "Seed of the counter-based RNG (init, shuffle, augmentation, dropout)."),
            modelSection, dataSection, trainSection, optimizerSection, lrScheduleSection,
            .section("eval", [
                .int("interval_epochs", 1, .positive, doc: "Evaluate every this many epochs (and at the end)."),
                .int("test_batch_size", 500, .positive, doc: "GLOBAL evaluation batch (no gradients)."),
            ]),
            .section("log", [
                .bool("tensorboard", true, doc: "Write TensorBoard event files to WORK_DIR/tb/."),
                .bool("console", true, doc: "Print progress lines on rank 0 (log.txt is always written)."),
                .choice("level", "info", ["debug", "info", "warning", "error"],
                        doc: "Lowest level logged to the console and log.txt (debug adds a line for every step)."),
            ]),
            .section("checkpoint", [
                .int("interval_steps", 0, .nonNegative,
                     doc: "Write a checkpoint every this many optimizer steps; 0 = only at the end of the run."),
                .int("keep_last", 3, .positive,
                     doc: "Keep this many newest step checkpoints (never deletes the ones named by latest/best)."),
            ]),
            .section("dist", [
                .double("bucket_cap_mb", 1, .greaterThan(0), doc: "Gradient all-reduce bucket size in MiB."),
                .bool("zero1", false, doc: "Shard optimizer state across ranks (ZeRO stage 1)."),
                .bool("overlap", true,
                      doc: "Start each bucket's all-reduce during backward as soon as its gradients are final (false: all after backward)."),
            ]),
        ]
    }

    static var modelSection: SchemaNode {
        .section("model", [
            .choice("type", "vit", ["vit", "adamixer"], doc: "Which model to build."),
            .section("vit", doc: "Vision transformer (DeiT-style, pre-LN, class token).", [
                .int("image_size", 32, .positive, doc: "Input height = width in pixels."),
                .int("in_channels", 3, .positive, doc: "Input channels (1 for Fashion-MNIST)."),
                .int("patch_size", 4, .positive, doc: "Patch side in pixels; image_size must be a multiple."),
                .int("num_classes", 100, .positive, doc: "Classifier outputs."),
                .int("embed_dim", 192, .positive, doc: "Token width C; a multiple of num_heads."),
                .int("depth", 12, .positive, doc: "Number of transformer blocks."),
                .int("num_heads", 3, .positive, doc: "Attention heads per block."),
                .double("mlp_ratio", 4.0, .greaterThan(0), doc: "MLP hidden width = mlp_ratio × embed_dim."),
                .bool("qkv_bias", true, doc: "Bias on the qkv projection."),
                .double("drop_rate", 0.0, .halfOpen(0, 1), doc: "Dropout after embeddings and in the MLP."),
                .double("attn_drop_rate", 0.0, .halfOpen(0, 1), doc: "Dropout on attention weights."),
                .double("drop_path_rate", 0.0, .halfOpen(0, 1), doc: "Stochastic depth rate of the last block."),
                .double("layer_norm_eps", 1e-6, .greaterThan(0), doc: "LayerNorm epsilon."),
            ]),
            .section("lors", doc: "Low-rank residual structure (LORST) on the transformer linears.", [
                .bool("enabled", false, doc: "Replace the targeted linears with shared + private low-rank parts."),
                .int("rank", 32, .positive, doc: "Rank r of one group; a layer's private rank is groups × r."),
                .intList("attn_groups", [1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 4, 6], .nonNegative,
                         doc: "Groups per block for qkv and proj (one entry per block)."),
                .intList("ffn_groups", [6, 4, 2, 1, 1, 1, 1, 1, 1, 1, 1, 1], .nonNegative,
                         doc: "Groups per block for fc1 and fc2 (one entry per block)."),
                .choiceList("targets", ["qkv", "proj", "fc1", "fc2"], ["qkv", "proj", "fc1", "fc2"],
                            doc: "Which linears of each block use LORST."),
            ]),
            .section("adamixer", doc: "AdaMixer query-based detector (defaults: R-50 1x COCO).", [
                .section("backbone", doc: "ResNet backbone (torchvision layout; C2-C5 feed the neck).", [
                    .int("depth", 50, .between(18, 101), doc: "ResNet depth: 18 or 34 (BasicBlock), 50 or 101 (Bottleneck)."),
                    .int("width", 64, .positive,
                         doc: "Base width: stem channels and the first stage's planes (64 = torchvision). C2-C5 have "
                            + "width, 2, 4, 8 x width channels (x4 for depth 50/101)."),
                    .choice("norm", "frozen_bn", ["frozen_bn", "group_norm"],
                            doc: "frozen_bn = eval-mode BatchNorm with frozen statistics (pretrained backbones); "
                                + "group_norm = GroupNorm with a trainable affine (randomly initialised backbones)."),
                    .int("norm_groups", 32, .positive, doc: "group_norm: groups of every norm layer; width must be a multiple."),
                    .int("frozen_stages", 1, .between(-1, 4),
                         doc: "Stages with frozen weights (mmdetection's frozen_stages): -1 = none, 0 = the stem, "
                            + "k = the stem and layer1..layerk."),
                    .string("pretrained", "",
                            doc: "Weights file (safetensors, or HDF5 with one dataset per name at the root) with torchvision's "
                                + "ResNet names, loaded over the random init; fc.* and num_batches_tracked are skipped. "
                                + "Empty = none."),
                ]),
                .int("num_queries", 100, .positive, doc: "Object queries."),
                .int("num_stages", 6, .positive, doc: "Decoder stages."),
                .int("content_dim", 256, .positive, doc: "Query content width."),
                .int("feedforward_channels", 2048, .positive, doc: "FFN hidden width per stage."),
                .int("num_heads", 8, .positive, doc: "Self-attention heads per stage."),
                .int("sampling_groups", 4, .positive, doc: "Groups of sampling points."),
                .int("in_points", 32, .positive, doc: "Sampling points per group (P_in)."),
                .int("out_points", 128, .positive, doc: "Mixer output points (P_out)."),
                .int("num_classes", 80, .positive, doc: "Object classes."),
                .section("test", doc: "Evaluation of the detector.", [
                    .int("max_per_img", 100, .positive,
                         doc: "Detections kept per image at evaluation: the top scores over all queries x classes "
                            + "(mmdetection's test_cfg max_per_img; 300 for the 300-query configs)."),
                ]),
                .section("lors", doc: "LORS in the decoder's mixing (FactorizedAdaptiveMixing): LORSA for the ACM/ASM "
                            + "weights M and S, LORST for W_o. The official setting also uses sampling_groups 2, in_points 64.", [
                    .bool("enabled", false, doc: "Replace each stage's mixing with one shared + per-stage private module."),
                    .int("lorsa_rank", 16, .positive, doc: "LORSA rank r of one group (M and S)."),
                    .intList("lorsa_groups", [1, 1, 2, 2, 3, 3], .positive, doc: "LORSA groups K_i per stage (one entry per stage)."),
                    .int("lorst_rank", 8, .positive, doc: "LORST rank r of W_o."),
                    .intList("lorst_groups", [1, 1, 1, 1, 1, 1], .positive,
                             doc: "LORST groups per stage; a stage's private W_o factors have rank groups × lorst_rank."),
                    .choice("shared_init", "official", ["official", "paper"],
                            doc: "Shared M/S generator init: official = zero weight, default bias; paper = Kaiming-uniform weight (a = 0, fan_in C), default bias."),
                ]),
            ]),
        ])
    }

    static var dataSection: SchemaNode {
        .section("data", [
            .choice("dataset", "fashion_mnist", ["fashion_mnist", "cifar100", "coco", "fmnist_det", "synthetic"],
                    doc: "Which dataset to read (coco, fmnist_det: COCO-format detection sets; fmnist_det is the set "
                        + "`lors make-detection` writes)."),
            .string("root", "/usr/share/datasets/fashion-mnist", doc: "Dataset directory."),
            .int("num_workers", 0, .nonNegative,
                 doc: "Detection: decode/transform threads per rank; 0 = on the training thread."),
            .choice("pipeline", "standard", ["standard", "multiscale_crop"],
                    doc: "Detection training pipeline: standard = flip + resize to (1333, 800); multiscale_crop = "
                        + "flip + multi-scale resize or resize-crop-resize (the 3x recipe). Validation always uses the test pipeline."),
            .intList("img_scale", [1333, 800], .positive,
                     doc: "Detection: [long, short] side limits of the keep-ratio resize of every pipeline (COCO: [1333, 800]); "
                         + "the multi-scale recipe's sizes scale with short / 800."),
            .string("train_images", "train2017", doc: "Detection: training image directory (relative to root unless absolute)."),
            .string("train_annotations", "annotations/instances_train2017.json",
                    doc: "Detection: training instances JSON (relative to root unless absolute)."),
            .string("val_images", "val2017", doc: "Detection: validation image directory (relative to root unless absolute)."),
            .string("val_annotations", "annotations/instances_val2017.json",
                    doc: "Detection: validation instances JSON (relative to root unless absolute)."),
            .bool("filter_empty_gt", true,
                  doc: "Detection: drop training images that no annotation refers to (validation keeps every image)."),
            .bool("skip_bad_images", false,
                  doc: "Detection: replace a missing or corrupt image by a blank one without boxes (with a warning) "
                      + "instead of stopping."),
            .doubleList("mean", [], .any, doc: "Per-channel mean of pixel/255 (one value or one per channel); "
                            + "empty = the dataset's statistics."),
            .doubleList("std", [], .greaterThan(0), doc: "Per-channel std of pixel/255; empty = the dataset's statistics."),
            .int("max_train_samples", 0, .nonNegative,
                 doc: "Use only the first N training samples (0 = all; synthetic: its size, 0 = 1024)."),
            .int("max_test_samples", 0, .nonNegative,
                 doc: "Use only the first N test samples (0 = all; synthetic: its size, 0 = 256)."),
            .section("augmentation", [
                .bool("random_flip", false, doc: "Random horizontal flip."),
                .int("random_crop_padding", 0, .nonNegative, doc: "Pad by this many pixels, then random crop; 0 = off."),
                .double("mixup_alpha", 0.0, .atLeast(0), doc: "Mixup Beta(α, α); 0 = off."),
                .double("cutmix_alpha", 0.0, .atLeast(0), doc: "CutMix Beta(α, α); 0 = off."),
                .double("mix_prob", 1.0, .closed(0, 1), doc: "Probability of mixing a batch when an alpha is > 0."),
                .double("switch_prob", 0.5, .closed(0, 1), doc: "Probability of CutMix rather than Mixup when both on."),
                .double("label_smoothing", 0.0, .halfOpen(0, 1), doc: "Label smoothing ε."),
            ]),
        ])
    }

    static var trainSection: SchemaNode {
        .section("train", [
            .int("batch_size", 64, .positive, doc: "GLOBAL batch; each of N ranks gets batch_size / N."),
            .int("epochs", 12, .positive, doc: "Length of the schedule in epochs."),
            .int("max_steps", nil, .nonNegative, nullable: true,
                 doc: "Stop after the optimizer step with this number (a stop condition only); null = no limit."),
            .double("grad_clip", nil, .atLeast(0), nullable: true, doc: "Global gradient-norm clip; null = off."),
            .int("log_interval", 50, .positive, doc: "Log every this many optimizer steps."),
            .int("accumulation_steps", 1, .positive, doc: "Micro-batches accumulated per optimizer step."),
            .int("threads", 0, .nonNegative, doc: "BLAS threads per rank; 0 = auto (cores / ranks on the node)."),
            .choice("nonfinite", "skip", ["skip", "stop"],
                    doc: "A step with NaN/Inf loss or gradients: skip its update with a warning, or stop (exit 1)."),
            .int("max_nonfinite_steps", 5, .positive,
                 doc: "skip: stop with an error after this many non-finite steps in a row."),
        ])
    }

    static var optimizerSection: SchemaNode {
        .section("optimizer", [
            .choice("type", "adamw", ["adamw", "sgd"], doc: "AdamW, or SGD with momentum."),
            .double("lr", 1e-3, .greaterThan(0), doc: "Base learning rate."),
            .double("weight_decay", 0.05, .atLeast(0), doc: "Decoupled (AdamW) or L2 (SGD) weight decay."),
            .doubleList("betas", [0.9, 0.999], .halfOpen(0, 1), count: 2...2, doc: "AdamW (β1, β2)."),
            .double("eps", 1e-8, .greaterThan(0), doc: "AdamW epsilon."),
            .double("momentum", 0.9, .halfOpen(0, 1), doc: "SGD momentum."),
            .bool("nesterov", false, doc: "SGD Nesterov momentum."),
            .choiceList("no_decay_on", [], ["norm", "bias", "embedding", "cls_token", "pos_embed"],
                        doc: "Parameter kinds that get weight decay 0."),
        ])
    }

    static var lrScheduleSection: SchemaNode {
        .section("lr_schedule", [
            .choice("preset", nil, ["none", "1x", "3x"], nullable: true,
                    doc: "1x = 12 epochs, step at [8, 11]; 3x = 36 epochs, step at [24, 33]. Fills train.epochs, "
                        + "policy and milestones (explicit values must agree). null or none = no preset."),
            .choice("policy", "step", ["step", "cosine", "constant"], doc: "Decay after warmup."),
            .intList("milestones", [8, 11], .nonNegative,
                     doc: "step: epochs (0-based) at which the LR is multiplied by gamma; increasing."),
            .double("gamma", 0.1, .greaterThan(0), doc: "step: factor per milestone."),
            .int("warmup_iters", 500, .nonNegative, doc: "Linear warmup length in iterations; 0 = no warmup."),
            .double("warmup_ratio", 0.001, .closed(0, 1), doc: "Warmup starts at warmup_ratio × base LR."),
            .int("warmup_epochs", 0, .nonNegative,
                 doc: "If > 0, warmup length in epochs (converted to iterations; takes precedence over warmup_iters)."),
            .double("min_lr_ratio", 0.01, .closed(0, 1), doc: "cosine: final LR = min_lr_ratio × base LR."),
            .choice("cosine_by", "iteration", ["iteration", "epoch"],
                    doc: "cosine: progress per iteration (mmcv by_epoch=False) or per epoch (mmcv by_epoch=True)."),
        ])
    }

    /// `lr_schedule.preset`: the mmdetection 1x and 3x schedules.
    static var lrSchedulePreset: ConfigPreset {
        ConfigPreset(key: "lr_schedule.preset", expansions: [
            "1x": [("train.epochs", .int(12)), ("lr_schedule.policy", .string("step")),
                   ("lr_schedule.milestones", .list([.int(8), .int(11)]))],
            "3x": [("train.epochs", .int(36)), ("lr_schedule.policy", .string("step")),
                   ("lr_schedule.milestones", .list([.int(24), .int(33)]))],
        ])
    }
}

// MARK: - Cross-key rules: checks that involve more than one key.

extension ConfigSchema {
    /// The rules of `ConfigSchema.lors`, run in order after presets.
    static var lorsRules: [ConfigRule] {
        [
            ConfigRule("vit: embed_dim divisible by num_heads") { config in
                guard config.string("model.type") == "vit" else { return }
                let width = config.int("model.vit.embed_dim"), heads = config.int("model.vit.num_heads")
                guard width % heads == 0 else {
                    throw ConfigError(.inconsistent(keys: ["model.vit.embed_dim", "model.vit.num_heads"],
                                                    detail: "embed_dim \(width) is not a multiple of num_heads \(heads)"))
                }
            },
            ConfigRule("vit: image_size divisible by patch_size") { config in
                guard config.string("model.type") == "vit" else { return }
                let size = config.int("model.vit.image_size"), patch = config.int("model.vit.patch_size")
                guard size % patch == 0 else {
                    throw ConfigError(.inconsistent(keys: ["model.vit.image_size", "model.vit.patch_size"],
                                                    detail: "image_size \(size) is not a multiple of patch_size \(patch)"))
                }
            },
            ConfigRule("vit + lors: one group count per block") { config in
                guard config.string("model.type") == "vit", config.bool("model.lors.enabled") else { return }
                let depth = config.int("model.vit.depth")
                for key in ["model.lors.attn_groups", "model.lors.ffn_groups"] {
                    let count = config.intList(key).count
                    guard count == depth else {
                        throw ConfigError(.inconsistent(
                            keys: [key, "model.vit.depth"],
                            detail: "\(key) has \(count) entries but model.vit.depth is \(depth) (one entry per block)"))
                    }
                }
                guard !config.stringList("model.lors.targets").isEmpty else {
                    throw ConfigError(.inconsistent(keys: ["model.lors.enabled", "model.lors.targets"],
                                                    detail: "LORS is enabled but targets is empty"))
                }
            },
            ConfigRule("adamixer: content_dim divisible by 4, num_heads and sampling_groups") { config in
                guard config.string("model.type") == "adamixer" else { return }
                let width = config.int("model.adamixer.content_dim")
                for key in ["model.adamixer.num_heads", "model.adamixer.sampling_groups"] where width % config.int(key) != 0 {
                    throw ConfigError(.inconsistent(keys: ["model.adamixer.content_dim", key],
                                                    detail: "content_dim \(width) is not a multiple of \(key) \(config.int(key))"))
                }
                guard width % 4 == 0 else {
                    throw ConfigError(.inconsistent(keys: ["model.adamixer.content_dim"],
                                                    detail: "content_dim \(width) is not a multiple of 4 (positional code per box coordinate)"))
                }
                guard width % 32 == 0 else {
                    throw ConfigError(.inconsistent(keys: ["model.adamixer.content_dim"],
                                                    detail: "content_dim \(width) is not a multiple of 32 (the neck's GroupNorm has 32 groups)"))
                }
            },
            ConfigRule("adamixer: backbone depth 18, 34, 50 or 101; width divisible by norm_groups") { config in
                let depth = config.int("model.adamixer.backbone.depth")
                guard [18, 34, 50, 101].contains(depth) else {
                    throw ConfigError(.inconsistent(keys: ["model.adamixer.backbone.depth"],
                                                    detail: "depth \(depth) is not a ResNet depth lors builds (18, 34, 50 or 101)"))
                }
                guard config.string("model.type") == "adamixer", config.string("model.adamixer.backbone.norm") == "group_norm" else { return }
                let width = config.int("model.adamixer.backbone.width"), groups = config.int("model.adamixer.backbone.norm_groups")
                guard width % groups == 0 else {
                    throw ConfigError(.inconsistent(keys: ["model.adamixer.backbone.width", "model.adamixer.backbone.norm_groups"],
                                                    detail: "width \(width) is not a multiple of norm_groups \(groups) (GroupNorm)"))
                }
            },
            ConfigRule("adamixer + lors: one group count per stage") { config in
                guard config.string("model.type") == "adamixer", config.bool("model.adamixer.lors.enabled") else { return }
                let stages = config.int("model.adamixer.num_stages")
                for key in ["model.adamixer.lors.lorsa_groups", "model.adamixer.lors.lorst_groups"] {
                    let count = config.intList(key).count
                    guard count == stages else {
                        throw ConfigError(.inconsistent(
                            keys: [key, "model.adamixer.num_stages"],
                            detail: "\(key) has \(count) entries but model.adamixer.num_stages is \(stages) (one entry per stage)"))
                    }
                }
            },
            ConfigRule("train: batch_size divisible by accumulation_steps") { config in
                let batch = config.int("train.batch_size"), steps = config.int("train.accumulation_steps")
                guard batch % steps == 0 else {
                    throw ConfigError(.inconsistent(
                        keys: ["train.batch_size", "train.accumulation_steps"],
                        detail: "batch_size \(batch) is not a multiple of accumulation_steps \(steps)"))
                }
            },
            ConfigRule("data: mean and std have the same length") { config in
                let mean = config.doubleList("data.mean"), std = config.doubleList("data.std")
                guard mean.count == std.count else {
                    throw ConfigError(.inconsistent(keys: ["data.mean", "data.std"],
                                                    detail: "data.mean has \(mean.count) values but data.std has \(std.count)"))
                }
            },
            ConfigRule("data: img_scale is [long, short]") { config in
                let scale = config.intList("data.img_scale")
                guard scale.count == 2, scale[0] >= scale[1] else {
                    throw ConfigError(.inconsistent(keys: ["data.img_scale"],
                                                    detail: "data.img_scale must be [long, short] with long >= short, found \(scale)"))
                }
            },
            ConfigRule("step schedule: increasing milestones") { config in
                guard config.string("lr_schedule.policy") == "step" else { return }
                let milestones = config.intList("lr_schedule.milestones")
                for (earlier, later) in zip(milestones, milestones.dropFirst()) where later <= earlier {
                    throw ConfigError(.inconsistent(
                        keys: ["lr_schedule.milestones", "lr_schedule.policy"],
                        detail: "milestones must be strictly increasing for the step policy, found \(milestones)"))
                }
            },
        ]
    }
}
