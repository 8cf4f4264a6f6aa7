// Strict validation: defaults, unknown keys, wrong types, ranges, enums, lengths, YAML syntax, cross-key rules.

import XCTest
@testable import LorsConfig

final class ValidationTests: ConfigTestCase {
    func testEmptyFileGivesDefaults() throws {
        let config = try load("")
        XCTAssertEqual(config.int("seed"), 0)
        XCTAssertEqual(config.string("model.type"), "vit")
        XCTAssertEqual(config.int("train.batch_size"), 64)
        XCTAssertNil(config.optionalInt("train.max_steps"))
        XCTAssertNil(config.optionalDouble("train.grad_clip"))
        XCTAssertEqual(config.double("model.vit.layer_norm_eps"), 1e-6)
        XCTAssertEqual(config.intList("model.lors.attn_groups"), [1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 4, 6])
        XCTAssertEqual(config.intList("model.lors.ffn_groups"), [6, 4, 2, 1, 1, 1, 1, 1, 1, 1, 1, 1])
        XCTAssertEqual(config.stringList("model.lors.targets"), ["qkv", "proj", "fc1", "fc2"])
        XCTAssertEqual(config.doubleList("optimizer.betas"), [0.9, 0.999])
        XCTAssertEqual(config.string("data.root"), "/usr/share/datasets/fashion-mnist")
        XCTAssertNil(config.optionalString("lr_schedule.preset"))
        XCTAssertEqual(config.double("dist.bucket_cap_mb"), 1)
        XCTAssertEqual(config.bool("dist.overlap"), true)
        XCTAssertTrue(config.explicitKeys.isEmpty)
        XCTAssertEqual(Set(config.values.keys), Set(ConfigSchema.lors.fieldPaths))
    }

    func testUnknownKeyNamesFullPathLineAndSuggestion() throws {
        let error = assertConfigError(try load("seed: 2\ntrain:\n  batchsize: 3\n"),
                                      contains: ["train.batchsize", "did you mean train.batch_size?", "config.yaml:3"])
        XCTAssertEqual(error?.kind, .unknownKey(path: "train.batchsize", suggestion: "train.batch_size"))
        assertConfigError(try load("batch_size: 3\n"), contains: ["batch_size", "did you mean train.batch_size?"])
        assertConfigError(try load("model:\n  vit:\n    dept: 3\n"),
                          contains: ["model.vit.dept", "did you mean model.vit.depth?"])
        let far = assertConfigError(try load("zzzzzzzz: 1\n"), contains: ["zzzzzzzz", "unknown key"])
        XCTAssertEqual(far?.kind, .unknownKey(path: "zzzzzzzz", suggestion: nil))
    }

    func testWrongTypeNamesPathExpectedAndFound() throws {
        let error = assertConfigError(try load("train:\n  batch_size: lots\n"),
                                      contains: ["train.batch_size", "expected int >= 1", "\"lots\"", "config.yaml:2"])
        XCTAssertEqual(error?.kind, .wrongType(path: "train.batch_size", expected: "int >= 1", found: "\"lots\""))
        assertConfigError(try load("train:\n  batch_size: \"32\"\n"), contains: ["train.batch_size", "int"])
        assertConfigError(try load("train:\n  batch_size: 1.5\n"), contains: ["train.batch_size", "\"1.5\""])
        assertConfigError(try load("train:\n  epochs:\n"), contains: ["train.epochs", "found null"])
        assertConfigError(try load("optimizer:\n  betas: 0.9\n"), contains: ["optimizer.betas", "list of float"])
        assertConfigError(try load("train: 5\n"), contains: ["train", "expected a map"])
        assertConfigError(try load("model:\n  vit:\n    qkv_bias: [1]\n"),
                          contains: ["model.vit.qkv_bias", "bool", "a list [1]"])
    }

    func testOutOfRangeNamesPathValueAndRange() throws {
        let error = assertConfigError(try load("model:\n  vit:\n    drop_rate: 1.0\n"),
                                      contains: ["model.vit.drop_rate", "1.0", "in [0, 1)"])
        XCTAssertEqual(error?.kind, .outOfRange(path: "model.vit.drop_rate", value: "1.0", allowed: "in [0, 1)"))
        assertConfigError(try load("seed: -1\n"), contains: ["seed", "-1", ">= 0"])
        assertConfigError(try load("optimizer:\n  lr: 0\n"), contains: ["optimizer.lr", "> 0"])
        assertConfigError(try load("model:\n  lors:\n    attn_groups: [1, -2]\n"),
                          contains: ["model.lors.attn_groups[1]", "-2", ">= 0"])
        assertConfigError(try load("optimizer:\n  betas: [0.9, 0.99, 0.5]\n"),
                          contains: ["optimizer.betas", "3 elements", "exactly 2"])
    }

    func testBadEnumNamesAllowedValues() throws {
        let error = assertConfigError(try load("data:\n  dataset: imagenet\n"),
                                      contains: ["data.dataset", "imagenet", "fashion_mnist, cifar100, coco, fmnist_det, synthetic"])
        XCTAssertEqual(error?.kind, .notInEnum(path: "data.dataset", value: "imagenet",
                                               allowed: ["fashion_mnist", "cifar100", "coco", "fmnist_det", "synthetic"]))
        assertConfigError(try load("model:\n  lors:\n    targets: [qkv, out]\n"),
                          contains: ["model.lors.targets[1]", "out", "qkv, proj, fc1, fc2"])
        assertConfigError(try load("model:\n  lors:\n    targets: [qkv, qkv]\n"),
                          contains: ["model.lors.targets", "qkv", "more than once"])
    }

    func testYamlSyntaxErrorNamesFileAndExactLine() throws {
        let text = """
            seed: 1
            train:
              batch_size: 32
              epochs: 12: 3
              log_interval: 5
            """
        let error = assertConfigError(try load(text, name: "broken.yaml"), contains: ["broken.yaml:4"])
        guard case let .yamlSyntax(file, line, _, _)? = error?.kind else {
            return XCTFail("wrong kind: \(String(describing: error))")
        }
        XCTAssertEqual(line, 4)
        XCTAssertTrue(file.hasSuffix("broken.yaml"))

        let tab = assertConfigError(try load("seed: 1\n\ntrain:\n\tbatch_size: 3\n", name: "tab.yaml"),
                                    contains: ["tab.yaml:4"])
        XCTAssertNotNil(tab)
    }

    func testDuplicateKeyIsAnError() throws {
        assertConfigError(try load("train:\n  epochs: 1\n  epochs: 2\n"), contains: ["train.epochs", "twice", ":3"])
    }

    func testCrossKeyRuleNamesBothKeysAndLengths() throws {
        let error = assertConfigError(try load("model:\n  vit: {depth: 6}\n  lors: {enabled: true}\n"),
                                      contains: ["model.lors.attn_groups", "model.vit.depth", "12", "6"])
        guard case .inconsistent? = error?.kind else { return XCTFail("wrong kind: \(String(describing: error))") }
        let fine = try load("""
            model:
              vit: {depth: 2}
              lors: {enabled: true, attn_groups: [1, 2], ffn_groups: [2, 1]}
            """)
        XCTAssertTrue(fine.bool("model.lors.enabled"))
        XCTAssertNoThrow(try load("model:\n  vit: {depth: 6}\n"), "groups are only checked when LORS is enabled")
        assertConfigError(try load("model:\n  vit: {embed_dim: 100, num_heads: 3}\n"),
                          contains: ["model.vit.embed_dim", "model.vit.num_heads", "100", "3"])
        assertConfigError(try load("lr_schedule:\n  milestones: [11, 8]\n"),
                          contains: ["lr_schedule.milestones", "increasing"])
    }

    /// A key older versions declared is unknown in a user's config, and dropped from a config stored in a checkpoint.
    func testRetiredKeysOnlyInStoredConfigs() throws {
        let schema = ConfigSchema(ConfigSchema.lors.nodes, presets: ConfigSchema.lors.presets, rules: ConfigSchema.lors.rules,
                                  retiredKeys: ["data.old_key"])
        let yaml = "data:\n  old_key: 0\n"
        assertConfigError(try ConfigLoader(schema: schema).load(yaml: yaml), contains: ["data.old_key"])
        let stored = try ConfigLoader(schema: schema, acceptingRetiredKeys: true).load(yaml: yaml)
        XCTAssertEqual(stored.yaml(), try ConfigLoader(schema: schema).load(yaml: "{}").yaml())
        assertConfigError(try ConfigLoader(schema: schema, acceptingRetiredKeys: true).load(yaml: "data:\n  old_kez: 0\n"),
                          contains: ["data.old_kez"])
        // data.num_workers was retired and is declared again (detection loader threads): a stored config keeps it.
        XCTAssertEqual(ConfigSchema.lors.retiredKeys, ["model.adamixer.backbone", "model.adamixer.frozen_stages"])
        let workers = try ConfigLoader(schema: .lors, acceptingRetiredKeys: true).load(yaml: "data:\n  num_workers: 2\n")
        XCTAssertEqual(workers.int("data.num_workers"), 2)
    }

    /// The AdaMixer backbone choice and frozen_stages moved into `model.adamixer.backbone.*`: a config that still sets
    /// them gets an error naming the new key; a stored config holding them (every stored config renders all keys) loads.
    func testRetiredAdaMixerBackboneKeys() throws {
        let loader = ConfigLoader(schema: .lors)
        assertConfigError(try loader.load(yaml: "model:\n  adamixer:\n    backbone: resnet101\n"),
                          contains: ["model.adamixer.backbone", "replaced", "model.adamixer.backbone.depth", "101", "<string>:3"])
        assertConfigError(try loader.load(yaml: "model:\n  adamixer:\n    frozen_stages: 2\n"),
                          contains: ["model.adamixer.frozen_stages", "replaced", "model.adamixer.backbone.frozen_stages"])
        assertConfigError(try loader.load(yaml: "", overrides: ["model.adamixer.backbone=resnet50"]),
                          contains: ["model.adamixer.backbone", "model.adamixer.backbone.depth"])
        let stored = "model:\n  adamixer:\n    backbone: resnet101\n    frozen_stages: 2\n    num_queries: 7\n"
        let config = try ConfigLoader(schema: .lors, acceptingRetiredKeys: true).load(yaml: stored)
        XCTAssertEqual(config.int("model.adamixer.num_queries"), 7)
        XCTAssertEqual(config.int("model.adamixer.backbone.depth"), 50, "the retired choice is dropped, the section keeps its defaults")
        XCTAssertEqual(config.int("model.adamixer.backbone.frozen_stages"), 1)
        // The new section in a stored config is read as usual.
        let current = try ConfigLoader(schema: .lors, acceptingRetiredKeys: true).load(yaml: "model:\n  adamixer:\n    backbone: {depth: 18}\n")
        XCTAssertEqual(current.int("model.adamixer.backbone.depth"), 18)
        // A schema extension keeps the retired keys.
        XCTAssertEqual(ConfigSchema.lors.adding(rule: ConfigRule("none") { _ in }).retiredKeyReplacements.count, 2)
    }

    func testAdaMixerBackboneRules() throws {
        let loader = ConfigLoader(schema: .lors)
        assertConfigError(try loader.load(yaml: "model:\n  adamixer:\n    backbone: {depth: 42}\n"),
                          contains: ["model.adamixer.backbone.depth", "42", "18, 34, 50 or 101"])
        assertConfigError(try loader.load(yaml: "model:\n  type: adamixer\n  adamixer:\n    backbone: {width: 24, norm: group_norm, norm_groups: 16}\n"),
                          contains: ["model.adamixer.backbone.width", "model.adamixer.backbone.norm_groups", "24", "16"])
        XCTAssertNoThrow(try loader.load(yaml: "model:\n  type: adamixer\n  adamixer:\n    backbone: {width: 24, norm: group_norm, norm_groups: 8}\n"))
        XCTAssertNoThrow(try loader.load(yaml: "model:\n  type: adamixer\n  adamixer:\n    backbone: {width: 24, norm: frozen_bn, norm_groups: 16}\n"),
                         "norm_groups only matters for group_norm")
    }
}
