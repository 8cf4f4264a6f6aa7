// `--set key=value` overrides, parsed per the schema type of the key.

import XCTest
@testable import LorsConfig

final class OverrideTests: ConfigTestCase {
    func testOverridesOfEachType() throws {
        let config = try load("train:\n  batch_size: 128\n", overrides: [
            "train.batch_size=32",
            "optimizer.lr=2.5e-4",
            "optimizer.weight_decay=0",
            "model.vit.qkv_bias=false",
            "optimizer.type=sgd",
            "model.lors.attn_groups=[2, 2,2,2,2,2,2,2,2,2,2,2]",
            "lr_schedule.milestones=3,5",
            "optimizer.betas=[0.8,0.9]",
            "model.lors.targets=qkv,fc2",
            "data.root=/tmp/data dir",
            "train.max_steps=100",
        ])
        XCTAssertEqual(config.int("train.batch_size"), 32, "override beats the file")
        XCTAssertEqual(config.double("optimizer.lr"), 2.5e-4)
        XCTAssertEqual(config.double("optimizer.weight_decay"), 0, "int literal accepted for a float")
        XCTAssertFalse(config.bool("model.vit.qkv_bias"))
        XCTAssertEqual(config.string("optimizer.type"), "sgd")
        XCTAssertEqual(config.intList("model.lors.attn_groups"), Array(repeating: 2, count: 12))
        XCTAssertEqual(config.intList("lr_schedule.milestones"), [3, 5])
        XCTAssertEqual(config.doubleList("optimizer.betas"), [0.8, 0.9])
        XCTAssertEqual(config.stringList("model.lors.targets"), ["qkv", "fc2"])
        XCTAssertEqual(config.string("data.root"), "/tmp/data dir")
        XCTAssertEqual(config.optionalInt("train.max_steps"), 100)
        XCTAssertTrue(config.isExplicit("train.max_steps"))
        XCTAssertFalse(config.isExplicit("train.epochs"))
    }

    func testNullEmptyListAndQuotedString() throws {
        let config = try load("train:\n  max_steps: 10\n", overrides: [
            "train.max_steps=null", "optimizer.no_decay_on=[]", "lr_schedule.preset=\"none\"",
        ])
        XCTAssertNil(config.optionalInt("train.max_steps"))
        XCTAssertEqual(config.stringList("optimizer.no_decay_on"), [])
        XCTAssertEqual(config.optionalString("lr_schedule.preset"), "none")
    }

    func testUnknownOverrideKeyNamesPathAndSuggestion() throws {
        let error = assertConfigError(try load("", overrides: ["train.batchsize=3"]),
                                      contains: ["train.batchsize", "did you mean train.batch_size?", "--set"])
        XCTAssertEqual(error?.kind, .unknownKey(path: "train.batchsize", suggestion: "train.batch_size"))
        assertConfigError(try load("", overrides: ["model.vit=3"]), contains: ["model.vit", "model.vit.image_size", "section"])
    }

    func testUnparsableOverrideNamesKeyAndExpectedType() throws {
        let badInt = assertConfigError(try load("", overrides: ["train.batch_size=many"]),
                                       contains: ["train.batch_size", "int >= 1", "\"many\""])
        XCTAssertEqual(badInt?.location, "--set train.batch_size=many")
        assertConfigError(try load("", overrides: ["optimizer.lr=fast"]), contains: ["optimizer.lr", "float > 0"])
        assertConfigError(try load("", overrides: ["model.vit.qkv_bias=2"]), contains: ["model.vit.qkv_bias", "bool"])
        assertConfigError(try load("", overrides: ["optimizer.type=adam"]),
                          contains: ["optimizer.type", "adam", "adamw, sgd"])
        assertConfigError(try load("", overrides: ["lr_schedule.milestones=[1,x]"]),
                          contains: ["lr_schedule.milestones[1]", "int >= 0", "\"x\""])
        assertConfigError(try load("", overrides: ["optimizer.lr=nan"]), contains: ["optimizer.lr", "float"])
        assertConfigError(try load("", overrides: ["train.batch_size=0"]),
                          contains: ["train.batch_size", "0", ">= 1"])
    }

    func testMalformedOverride() throws {
        let error = assertConfigError(try load("", overrides: ["train.batch_size"]), contains: ["train.batch_size"])
        XCTAssertEqual(error?.kind, .malformedOverride(text: "train.batch_size"))
    }
}
