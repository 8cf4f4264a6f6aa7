// RunSettings: decoding of the shipped configs, defaults and overrides; every declared key decoded; every enum
// in step with the schema's allowed values.

import Foundation
import XCTest
@testable import LorsConfig

final class RunSettingsTests: XCTestCase {
    typealias S = RunSettings

    /// The package root (found from this file's path).
    static let root: URL = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url
    }()

    private func settings(config name: String, _ overrides: [String] = []) throws -> RunSettings {
        let path = Self.root.appendingPathComponent("configs/\(name)").path
        return RunSettings(try ConfigLoader(schema: .lors).load(file: path, overrides: overrides))
    }

    private func settings(yaml: String, _ overrides: [String] = []) throws -> RunSettings {
        RunSettings(try ConfigLoader(schema: .lors).load(yaml: yaml, overrides: overrides))
    }

    // MARK: - the schema and the structs agree

    /// Every declared key is read by the decoder (a key no code reads fails here); the preset selector is consumed by
    /// the loader, which expands it into other keys.
    func testTheDecoderReadsEveryDeclaredKey() throws {
        let (undecoded, undeclared) = try decodingGaps(.lors)
        XCTAssertEqual(undecoded, [], "declared keys that nothing decodes")
        XCTAssertEqual(undeclared, [], "decoded keys the schema does not declare")
        // The check finds a declared key without a reader.
        let extended = ConfigSchema.lors.adding([.int("unread_key", 0, doc: "Read by nothing.")], under: "data")
        XCTAssertEqual(try decodingGaps(extended).undecoded, ["data.unread_key"])
    }

    /// Keys of `schema` the decoder does not read, and keys it reads that `schema` does not declare.
    private func decodingGaps(_ schema: ConfigSchema) throws -> (undecoded: [String], undeclared: [String]) {
        let (_, read) = RunSettings.decode(try ConfigLoader(schema: schema).load(yaml: ""))
        let expected = Set(schema.fieldPaths).subtracting(schema.presets.map(\.key))
        return (expected.subtracting(read).sorted(), read.subtracting(expected).sorted())
    }

    /// Each enum has exactly the values the schema allows for its key, and every enum field of the schema has one.
    func testEveryEnumMatchesTheSchemasAllowedValues() {
        func raw<E: CaseIterable & RawRepresentable>(_: E.Type) -> [String] where E.RawValue == String {
            E.allCases.map(\.rawValue)
        }
        let enums: [String: [String]] = [
            S.Model.Key.type: raw(S.Model.Kind.self),
            S.Model.LORS.Key.targets: raw(S.Model.LORS.Target.self),
            S.Model.AdaMixer.Backbone.Key.norm: raw(S.Model.AdaMixer.Backbone.Norm.self),
            S.Model.AdaMixer.LORS.Key.sharedInit: raw(S.Model.AdaMixer.LORS.SharedInit.self),
            S.Data.Key.dataset: raw(S.Data.Dataset.self),
            S.Data.Key.pipeline: raw(S.Data.Pipeline.self),
            S.Train.Key.nonfinite: raw(S.Train.NonFinite.self),
            S.Optimizer.Key.type: raw(S.Optimizer.Kind.self),
            S.Optimizer.Key.noDecayOn: raw(S.Optimizer.NoDecay.self),
            S.Schedule.Key.policy: raw(S.Schedule.Policy.self),
            S.Schedule.Key.cosineBy: raw(S.Schedule.CosineBy.self),
            S.Log.Key.level: raw(S.Log.Level.self),
        ]
        let schema = ConfigSchema.lors
        var choiceFields: Set<String> = []
        for path in schema.fieldPaths where !schema.presets.contains(where: { $0.key == path }) {
            let allowed: [String]
            switch schema.field(at: path)?.type {
            case let .choice(values)?: allowed = values
            case let .list(.choice(values), _)?: allowed = values
            default: continue
            }
            choiceFields.insert(path)
            XCTAssertEqual(enums[path], allowed, "\(path): the enum's cases differ from the schema's allowed values")
        }
        XCTAssertEqual(choiceFields, Set(enums.keys))
    }

    func testKeysAllowedToChangeOnResumeAreDeclared() {
        let declared = Set(ConfigSchema.lors.fieldPaths)
        XCTAssertEqual(RunSettings.keysAllowedToChangeOnResume.subtracting(declared).sorted(), [])
        XCTAssertTrue(RunSettings.keysAllowedToChangeOnResume.contains(S.Train.Key.maxSteps))
        XCTAssertTrue(RunSettings.keysAllowedToChangeOnResume.contains(S.Data.Key.numWorkers), "threads never change results")
        XCTAssertFalse(RunSettings.keysAllowedToChangeOnResume.contains(S.Train.Key.batchSize))
    }

    // MARK: - defaults

    func testDefaults() throws {
        let s = try settings(yaml: "")
        XCTAssertEqual(s.seed, 0)
        XCTAssertEqual(s.model.type, .vit)
        XCTAssertEqual(s.model.vit.embedDim, 192)
        XCTAssertEqual(s.model.vit.numClasses, 100)
        XCTAssertEqual(s.model.vit.layerNormEps, 1e-6)
        XCTAssertTrue(s.model.vit.qkvBias)
        XCTAssertFalse(s.model.lors.enabled)
        XCTAssertEqual(s.model.lors.targets, [.qkv, .proj, .fc1, .fc2])
        XCTAssertEqual(s.model.adamixer.backbone, .init(depth: 50, width: 64, norm: .frozenBN, normGroups: 32, frozenStages: 1,
                                                         pretrained: ""))
        XCTAssertEqual(s.model.adamixer.test.maxPerImage, 100)
        XCTAssertEqual(s.model.adamixer.lors.sharedInit, .official)
        XCTAssertEqual(s.data.dataset, .fashionMNIST)
        XCTAssertEqual(s.data.root, "/usr/share/datasets/fashion-mnist")
        XCTAssertEqual(s.data.mean, [])
        XCTAssertEqual(s.data.augmentation.mixProb, 1.0)
        XCTAssertEqual(s.data.augmentation.switchProb, 0.5)
        XCTAssertEqual(s.train.batchSize, 64)
        XCTAssertEqual(s.train.epochs, 12)
        XCTAssertNil(s.train.maxSteps)
        XCTAssertNil(s.train.gradClip)
        XCTAssertEqual(s.train.nonfinite, .skip)
        XCTAssertEqual(s.train.maxNonfiniteSteps, 5)
        XCTAssertEqual(s.optimizer.type, .adamw)
        XCTAssertEqual(s.optimizer.beta1, 0.9)
        XCTAssertEqual(s.optimizer.beta2, 0.999)
        XCTAssertEqual(s.optimizer.noDecayOn, [])
        XCTAssertEqual(s.schedule.policy, .step)
        XCTAssertEqual(s.schedule.milestones, [8, 11])
        XCTAssertEqual(s.schedule.cosineBy, .iteration)
        XCTAssertEqual(s.schedule.warmupIters, 500)
        XCTAssertEqual(s.eval.testBatchSize, 500)
        XCTAssertEqual(s.log.level, .info)
        XCTAssertTrue(s.log.tensorboard && s.log.console)
        XCTAssertEqual(s.checkpoint.intervalSteps, 0)
        XCTAssertEqual(s.checkpoint.keepLast, 3)
        XCTAssertEqual(s.dist.bucketCapMB, 1)
        XCTAssertFalse(s.dist.zero1)
        XCTAssertTrue(s.dist.overlap)
    }

    func testDetectionDataKeys() throws {
        let d = try settings(yaml: "").data
        XCTAssertEqual(d.numWorkers, 0)
        XCTAssertEqual(d.pipeline, .standard)
        XCTAssertEqual(d.trainImages, "train2017")
        XCTAssertEqual(d.trainAnnotations, "annotations/instances_train2017.json")
        XCTAssertEqual(d.valImages, "val2017")
        XCTAssertEqual(d.valAnnotations, "annotations/instances_val2017.json")
        XCTAssertTrue(d.filterEmptyGT)
        XCTAssertFalse(d.skipBadImages)
        XCTAssertFalse(d.dataset.isDetection)

        let set = try settings(yaml: """
            data:
              dataset: fmnist_det
              root: /data/det/
              num_workers: 3
              pipeline: multiscale_crop
              train_images: train
              train_annotations: /abs/train.json
              val_images: val
              val_annotations: annotations/instances_val.json
              filter_empty_gt: false
              skip_bad_images: true
            """).data
        XCTAssertEqual(set.dataset, .fmnistDet)
        XCTAssertTrue(set.dataset.isDetection)
        XCTAssertEqual(set.numWorkers, 3)
        XCTAssertEqual(set.pipeline, .multiscaleCrop)
        XCTAssertFalse(set.filterEmptyGT)
        XCTAssertTrue(set.skipBadImages)
        // Relative paths join data.root; absolute ones stay.
        XCTAssertEqual(set.path(set.trainImages), "/data/det/train")
        XCTAssertEqual(set.path(set.trainAnnotations), "/abs/train.json")
        XCTAssertEqual(set.path(set.valAnnotations), "/data/det/annotations/instances_val.json")
        var noSlash = set
        noSlash.root = "data/fmnist_det"
        XCTAssertEqual(noSlash.path(noSlash.valImages), "data/fmnist_det/val")

        XCTAssertThrowsError(try settings(yaml: "data:\n  pipeline: multiscale\n"))
        XCTAssertThrowsError(try settings(yaml: "data:\n  num_workers: -1\n"))
        XCTAssertEqual(try settings(yaml: "", ["data.num_workers=2", "data.pipeline=multiscale_crop"]).data.numWorkers, 2)
    }

    // MARK: - the shipped configs

    func testFashionMNISTViT() throws {
        let s = try settings(config: "fmnist_vit.yaml")
        XCTAssertEqual(s.data.dataset, .fashionMNIST)
        XCTAssertEqual(s.model.type, .vit)
        XCTAssertEqual(s.model.vit.imageSize, 28)
        XCTAssertEqual(s.model.vit.inChannels, 1)
        XCTAssertEqual(s.model.vit.patchSize, 7)
        XCTAssertEqual(s.model.vit.mlpRatio, 2.0)
        XCTAssertTrue(s.data.augmentation.randomFlip)
        XCTAssertEqual(s.train.batchSize, 128)
        XCTAssertEqual(s.train.gradClip, 5.0)
        XCTAssertEqual(s.optimizer.lr, 0.002)
        XCTAssertEqual(s.optimizer.noDecayOn, [.norm, .bias, .clsToken, .posEmbed])
        XCTAssertEqual(s.schedule.policy, .cosine)
        XCTAssertEqual(s.schedule.cosineBy, .iteration)
        XCTAssertEqual(s.schedule.warmupIters, 200)
        XCTAssertEqual(s.eval.testBatchSize, 1000)
        XCTAssertFalse(try settings(config: "fmnist_vit.yaml").model.lors.enabled)
        XCTAssertTrue(try settings(config: "fmnist_vit_lors.yaml").model.lors.enabled)
    }

    func testDeiTTinyLORSCIFAR100() throws {
        let s = try settings(config: "deit_tiny_lors_cifar100.yaml")
        XCTAssertEqual(s.data.dataset, .cifar100)
        XCTAssertEqual(s.data.augmentation.mixupAlpha, 0.8)
        XCTAssertEqual(s.data.augmentation.cutmixAlpha, 1.0)
        XCTAssertEqual(s.data.augmentation.labelSmoothing, 0.1)
        XCTAssertEqual(s.model.vit.dropPathRate, 0.1)
        XCTAssertTrue(s.model.lors.enabled)
        XCTAssertEqual(s.model.lors.rank, 32)
        XCTAssertEqual(s.model.lors.attnGroups, [1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 4, 6])
        XCTAssertEqual(s.model.lors.ffnGroups, [6, 4, 2, 1, 1, 1, 1, 1, 1, 1, 1, 1])
        XCTAssertEqual(Set(s.model.lors.targets), [.qkv, .proj, .fc1, .fc2])
        XCTAssertEqual(s.train.epochs, 300)
        XCTAssertEqual(s.schedule.warmupEpochs, 20)
        XCTAssertEqual(s.schedule.minLRRatio, 0.01)
        XCTAssertEqual(s.eval.intervalEpochs, 10)
    }

    func testAdaMixerConfigs() throws {
        let r50 = try settings(config: "adamixer_r50_1x_coco.yaml")
        XCTAssertEqual(r50.model.type, .adamixer)
        XCTAssertEqual(r50.data.dataset, .coco)
        XCTAssertEqual(r50.model.adamixer.backbone, .init(depth: 50, width: 64, norm: .frozenBN, normGroups: 32, frozenStages: 1,
                                                           pretrained: "data/pretrained/resnet50.safetensors"))
        XCTAssertEqual(r50.model.adamixer.test.maxPerImage, 100)
        XCTAssertEqual(r50.model.adamixer.numQueries, 100)
        XCTAssertEqual(r50.optimizer.type, .adamw)
        XCTAssertEqual(r50.optimizer.lr, 2.5e-5)
        XCTAssertEqual(r50.train.gradClip, 1.0)
        XCTAssertEqual(r50.train.batchSize, 16)
        XCTAssertEqual(r50.schedule.warmupIters, 500)
        XCTAssertEqual(r50.schedule.warmupRatio, 0.001)
        XCTAssertEqual(r50.schedule.warmupEpochs, 0)
        XCTAssertEqual(r50.model.adamixer.samplingGroups, 4)
        XCTAssertFalse(r50.model.adamixer.lors.enabled)
        XCTAssertEqual(r50.schedule.policy, .step, "the 1x preset")
        XCTAssertEqual(r50.schedule.milestones, [8, 11])
        XCTAssertEqual(r50.train.epochs, 12)
        XCTAssertEqual(r50.optimizer.weightDecay, 1e-4)

        let r101 = try settings(config: "adamixer_r101_lors_300q_3x_coco.yaml")
        XCTAssertEqual(r101.model.adamixer.backbone.depth, 101)
        XCTAssertEqual(r101.model.adamixer.backbone.pretrained, "data/pretrained/resnet101.safetensors")
        XCTAssertEqual(r101.model.adamixer.backbone.frozenStages, 1)
        XCTAssertEqual(r101.model.adamixer.numQueries, 300)
        XCTAssertEqual(r101.model.adamixer.test.maxPerImage, 300)
        XCTAssertEqual(r101.model.adamixer.samplingGroups, 2)
        XCTAssertEqual(r101.model.adamixer.inPoints, 64)
        XCTAssertTrue(r101.model.adamixer.lors.enabled)
        XCTAssertEqual(r101.model.adamixer.lors.lorsaGroups, [1, 1, 2, 2, 3, 3])
        XCTAssertEqual(r101.model.adamixer.lors.lorstRank, 8)
        XCTAssertEqual(r101.model.adamixer.lors.sharedInit, .official)
        XCTAssertEqual(r101.train.epochs, 36, "the 3x preset")
        XCTAssertEqual(r101.schedule.milestones, [24, 33])

        // Data: COCO 2017 under data/coco; the standard pipeline for 1x, multi-scale crops for 3x.
        for config in ["adamixer_r50_1x_coco.yaml", "adamixer_r50_lors_1x_coco.yaml"] {
            XCTAssertEqual(try settings(config: config).data.pipeline, .standard, config)
        }
        XCTAssertEqual(r101.data.pipeline, .multiscaleCrop)

        // R-50 + LORS, 300 queries, 3x with crops: the R-101 config's settings on ResNet-50.
        let r50q300 = try settings(config: "adamixer_r50_lors_300q_3x_coco.yaml")
        var expected = r101
        expected.model.adamixer.backbone.depth = 50
        expected.model.adamixer.backbone.pretrained = "data/pretrained/resnet50.safetensors"
        XCTAssertEqual(r50q300, expected)
        XCTAssertEqual(r50q300.train.epochs, 36)
        XCTAssertEqual(r50q300.optimizer, r50.optimizer)
        XCTAssertEqual(r50q300.train.gradClip, 1.0)
        XCTAssertEqual(r50.data.path(r50.data.trainAnnotations), "data/coco/annotations/instances_train2017.json")
        XCTAssertEqual(r50.data.path(r50.data.valImages), "data/coco/val2017")
        XCTAssertTrue(r50.data.filterEmptyGT)

        // The Fashion-MNIST detection set (lors make-detection's layout).
        for config in ["fmnist_det_adamixer.yaml", "fmnist_det_adamixer_lors.yaml"] {
            let s = try settings(config: config)
            XCTAssertEqual(s.data.dataset, .fmnistDet, config)
            XCTAssertEqual(s.model.adamixer.numClasses, 10, config)
            XCTAssertEqual(s.data.path(s.data.trainAnnotations), "data/fmnist_det/annotations/instances_train.json", config)
            XCTAssertEqual(s.data.path(s.data.valAnnotations), "data/fmnist_det/annotations/instances_val.json", config)
            XCTAssertEqual(s.data.path(s.data.trainImages), "data/fmnist_det/train", config)
            XCTAssertEqual(s.data.path(s.data.valImages), "data/fmnist_det/val", config)
        }
        // Their CPU model: random-init ResNet-18 at width 32 with GroupNorm and a narrow decoder.
        let vanilla = try settings(config: "fmnist_det_adamixer.yaml"), lors = try settings(config: "fmnist_det_adamixer_lors.yaml")
        for s in [vanilla, lors] {
            XCTAssertEqual(s.model.adamixer.backbone, .init(depth: 18, width: 32, norm: .groupNorm, normGroups: 8, frozenStages: -1,
                                                             pretrained: ""))
            XCTAssertEqual([s.model.adamixer.contentDim, s.model.adamixer.feedforwardChannels, s.model.adamixer.numHeads,
                            s.model.adamixer.outPoints, s.model.adamixer.numQueries, s.model.adamixer.numStages], [64, 256, 8, 64, 30, 6])
        }
        XCTAssertEqual([vanilla.model.adamixer.samplingGroups, vanilla.model.adamixer.inPoints], [4, 16])
        XCTAssertFalse(vanilla.model.adamixer.lors.enabled)
        XCTAssertEqual([lors.model.adamixer.samplingGroups, lors.model.adamixer.inPoints], [2, 32])
        XCTAssertTrue(lors.model.adamixer.lors.enabled)
        XCTAssertEqual(lors.model.adamixer.lors.lorsaRank, 4)
        XCTAssertEqual(lors.model.adamixer.lors.lorsaGroups, [1, 1, 2, 2, 3, 3])
        XCTAssertEqual(lors.model.adamixer.lors.lorstRank, 2)
    }

    // MARK: - overrides

    func testOverridesReachEveryKindOfField() throws {
        let s = try settings(config: "fmnist_vit.yaml", [
            "seed=42", "optimizer.type=sgd", "optimizer.momentum=0.8", "optimizer.nesterov=true",
            "optimizer.betas=[0.8, 0.99]", "lr_schedule.cosine_by=epoch", "train.nonfinite=stop", "train.max_steps=7",
            "train.grad_clip=null", "train.threads=3", "log.level=debug", "log.tensorboard=false", "dist.zero1=true",
            "dist.bucket_cap_mb=0.5", "checkpoint.interval_steps=10", "checkpoint.keep_last=1",
            "data.dataset=synthetic", "data.mean=[0.5]", "data.std=[0.25]", "data.max_train_samples=64",
            "model.lors.targets=[fc2, qkv]", "model.adamixer.lors.shared_init=paper", "model.adamixer.backbone.depth=101",
            "model.adamixer.backbone.norm=group_norm", "model.adamixer.backbone.pretrained=w.safetensors", "model.adamixer.test.max_per_img=7",
        ])
        XCTAssertEqual(s.seed, 42)
        XCTAssertEqual(s.optimizer.type, .sgd)
        XCTAssertEqual(s.optimizer.momentum, 0.8)
        XCTAssertTrue(s.optimizer.nesterov)
        XCTAssertEqual([s.optimizer.beta1, s.optimizer.beta2], [0.8, 0.99])
        XCTAssertEqual(s.schedule.cosineBy, .epoch)
        XCTAssertEqual(s.train.nonfinite, .stop)
        XCTAssertEqual(s.train.maxSteps, 7)
        XCTAssertNil(s.train.gradClip)
        XCTAssertEqual(s.train.threads, 3)
        XCTAssertEqual(s.log.level, .debug)
        XCTAssertFalse(s.log.tensorboard)
        XCTAssertTrue(s.dist.zero1)
        XCTAssertEqual(s.dist.bucketCapMB, 0.5)
        XCTAssertEqual(s.checkpoint.intervalSteps, 10)
        XCTAssertEqual(s.checkpoint.keepLast, 1)
        XCTAssertEqual(s.data.dataset, .synthetic)
        XCTAssertEqual(s.data.mean, [0.5])
        XCTAssertEqual(s.data.std, [0.25])
        XCTAssertEqual(s.data.maxTrainSamples, 64)
        XCTAssertEqual(s.model.lors.targets, [.fc2, .qkv])
        XCTAssertEqual(s.model.adamixer.lors.sharedInit, .paper)
        XCTAssertEqual(s.model.adamixer.backbone.depth, 101)
        XCTAssertEqual(s.model.adamixer.backbone.norm, .groupNorm)
        XCTAssertEqual(s.model.adamixer.backbone.pretrained, "w.safetensors")
        XCTAssertEqual(s.model.adamixer.test.maxPerImage, 7)
        for policy in S.Schedule.Policy.allCases {
            XCTAssertEqual(try settings(yaml: "lr_schedule: {policy: \(policy.rawValue)}").schedule.policy, policy)
        }
        for level in S.Log.Level.allCases {
            XCTAssertEqual(try settings(yaml: "", ["log.level=\(level.rawValue)"]).log.level, level)
        }
    }

    /// Decoding the same config twice gives equal settings; a change of one key changes them.
    func testSettingsAreValues() throws {
        let a = try settings(config: "fmnist_vit.yaml"), b = try settings(config: "fmnist_vit.yaml")
        XCTAssertEqual(a, b)
        XCTAssertNotEqual(a, try settings(config: "fmnist_vit.yaml", ["eval.test_batch_size=10"]))
    }
}
