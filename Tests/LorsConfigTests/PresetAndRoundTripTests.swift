// `lr_schedule.preset` expansion and conflicts; rendering to YAML and loading it back; schema extension.

import XCTest
@testable import LorsConfig

final class PresetAndRoundTripTests: ConfigTestCase {
    func testPresetFillsEpochsPolicyAndMilestones() throws {
        let config = try load("lr_schedule:\n  preset: 3x\n  policy: step\n")
        XCTAssertEqual(config.int("train.epochs"), 36)
        XCTAssertEqual(config.string("lr_schedule.policy"), "step", "an explicit value equal to the preset is fine")
        XCTAssertEqual(config.intList("lr_schedule.milestones"), [24, 33])
        let none = try load("lr_schedule: {preset: none}\ntrain: {epochs: 7}\n")
        XCTAssertEqual(none.int("train.epochs"), 7, "preset none fills nothing")
    }

    func testExplicitConflictingValueNamesBothKeys() throws {
        let error = assertConfigError(try load("lr_schedule:\n  preset: 1x\ntrain:\n  epochs: 24\n"),
                                      contains: ["train.epochs", "lr_schedule.preset", "24", "12", "config.yaml:4"])
        XCTAssertEqual(error?.kind, .presetConflict(presetKey: "lr_schedule.preset", preset: "1x", key: "train.epochs",
                                                    presetValue: "12", found: "24"))
        assertConfigError(try load("lr_schedule: {preset: 1x}\n", overrides: ["lr_schedule.policy=cosine"]),
                          contains: ["lr_schedule.policy", "lr_schedule.preset", "cosine", "--set"])
        assertConfigError(try load("lr_schedule: {preset: 3x, milestones: [8, 11]}\n"),
                          contains: ["lr_schedule.milestones", "[24, 33]", "[8, 11]"])
    }

    func testYamlRoundTripGivesEqualValues() throws {
        let first = try load("""
            seed: 7
            model:
              type: vit
              lors: {enabled: true, targets: [fc1, qkv]}
            data:
              root: "/data/with space: and # hash"
              augmentation: {mixup_alpha: 0.8, label_smoothing: 0.1}
            optimizer: {lr: 1.0e-8, betas: [0.5, 0.25], no_decay_on: [norm, bias]}
            lr_schedule: {preset: 1x}
            train: {grad_clip: 5, max_steps: null}
            """)
        let text = first.yaml(header: ["resolved config"])
        XCTAssertTrue(text.hasPrefix("# resolved config\nseed: 7\nmodel:\n  type: vit\n  vit:\n    image_size: 32\n"))
        XCTAssertTrue(text.contains("\n    targets: [fc1, qkv]\n"), text)
        XCTAssertTrue(text.contains("\n  lr: 1.0e-08\n"), text)
        XCTAssertTrue(text.contains("\n  preset: \"1x\"\n"), text)
        XCTAssertTrue(text.contains("\n  max_steps: null\n"), text)
        let second = try loader.load(yaml: text, source: "checkpoint:/meta/config")
        XCTAssertEqual(second.values, first.values)
        XCTAssertEqual(second.sourceFile, "checkpoint:/meta/config")
        XCTAssertEqual(second.yaml(header: ["resolved config"]), text, "rendering is stable")
        XCTAssertEqual(second.string("data.root"), "/data/with space: and # hash")
    }

    func testDefaultsRoundTripAndStringsThatLookLikeOtherTypes() throws {
        let defaults = try load("")
        XCTAssertEqual(try loader.load(yaml: defaults.yaml()).values, defaults.values)
        for tricky in ["true", "null", "12", "1e5", "", "a\"b\\c", "tab\there", "-dash"] {
            let config = try loader.load(yaml: "data:\n  root: \(ConfigValue.yamlString(tricky))\n")
            XCTAssertEqual(config.string("data.root"), tricky)
            XCTAssertEqual(try loader.load(yaml: config.yaml()).string("data.root"), tricky)
        }
    }

    func testSchemaCanBeExtended() throws {
        let schema = ConfigSchema.lors
            .adding([.int("giant_steps", 2, .positive, doc: "test key")], under: "model.adamixer")
            .adding(rule: ConfigRule("test rule") { config in
                if config.int("model.adamixer.giant_steps") == 3 {
                    throw ConfigError(.inconsistent(keys: ["model.adamixer.giant_steps"], detail: "three is forbidden"))
                }
            })
        let extended = ConfigLoader(schema: schema)
        XCTAssertEqual(try extended.load(yaml: "").int("model.adamixer.giant_steps"), 2)
        XCTAssertEqual(try extended.load(yaml: "model: {adamixer: {giant_steps: 5}}").int("model.adamixer.giant_steps"), 5)
        assertConfigError(try extended.load(yaml: "model: {adamixer: {giant_steps: 3}}"), contains: ["three"])
        assertConfigError(try loader.load(yaml: "model: {adamixer: {giant_steps: 5}}"),
                          contains: ["model.adamixer.giant_steps", "unknown key"])
    }
}
