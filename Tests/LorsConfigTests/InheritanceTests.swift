// `_base_` inheritance: relative paths, two levels, lists of bases, deep merge, `_delete_`, cycles.

import XCTest
@testable import LorsConfig

final class InheritanceTests: ConfigTestCase {
    func testTwoLevelsDeepMergeRelativeToIncludingFile() throws {
        try files.write("base/root.yaml", """
            seed: 1
            train:
              batch_size: 128
              epochs: 30
            model:
              vit:
                depth: 6
                num_heads: 6
            """)
        try files.write("base/mid.yaml", """
            _base_: root.yaml
            train:
              epochs: 20
            model:
              vit:
                depth: 4
            """)
        let config = try load("""
            _base_: base/mid.yaml
            train:
              log_interval: 7
            """)
        XCTAssertEqual(config.int("seed"), 1)
        XCTAssertEqual(config.int("train.batch_size"), 128, "root value survives two merges")
        XCTAssertEqual(config.int("train.epochs"), 20, "mid overrides root")
        XCTAssertEqual(config.int("train.log_interval"), 7, "child adds a key")
        XCTAssertEqual(config.int("model.vit.depth"), 4)
        XCTAssertEqual(config.int("model.vit.num_heads"), 6, "sibling keys of a nested map are kept")
        XCTAssertEqual(config.int("model.vit.embed_dim"), 192, "unset keys take the default")
        XCTAssertEqual(config.includedFiles.map { ($0 as NSString).lastPathComponent },
                       ["root.yaml", "mid.yaml", "config.yaml"])
        XCTAssertEqual(config.sourceFile, files.path("config.yaml"))
    }

    func testListOfBasesMergedInOrderAndListsReplace() throws {
        try files.write("a.yaml", """
            train: {batch_size: 16, epochs: 3}
            optimizer: {betas: [0.5, 0.6], lr: 0.1}
            """)
        try files.write("b.yaml", """
            train: {epochs: 5}
            optimizer: {betas: [0.7, 0.8]}
            """)
        let config = try load("""
            _base_: [a.yaml, b.yaml]
            optimizer:
              lr: 0.2
            """)
        XCTAssertEqual(config.int("train.batch_size"), 16)
        XCTAssertEqual(config.int("train.epochs"), 5, "the later base wins")
        XCTAssertEqual(config.doubleList("optimizer.betas"), [0.7, 0.8], "lists replace, not concatenate")
        XCTAssertEqual(config.double("optimizer.lr"), 0.2, "the child wins over all bases")
    }

    func testDeleteReplacesInsteadOfMerging() throws {
        try files.write("base.yaml", """
            model:
              vit:
                depth: 4
                num_heads: 6
                embed_dim: 96
            """)
        let config = try load("""
            _base_: base.yaml
            model:
              vit:
                _delete_: true
                depth: 2
            """)
        XCTAssertEqual(config.int("model.vit.depth"), 2)
        XCTAssertEqual(config.int("model.vit.num_heads"), 3, "deleted base key falls back to the default")
        XCTAssertEqual(config.int("model.vit.embed_dim"), 192)

        let merged = try load("""
            _base_: base.yaml
            model:
              vit:
                _delete_: false
                depth: 2
            """, name: "merged.yaml")
        XCTAssertEqual(merged.int("model.vit.num_heads"), 6, "_delete_: false merges")
    }

    func testCycleIsAnErrorNamingTheChain() throws {
        try files.write("a.yaml", "_base_: b.yaml\nseed: 1\n")
        try files.write("b.yaml", "_base_: c.yaml\n")
        try files.write("c.yaml", "_base_: a.yaml\n")
        let error = assertConfigError(try loader.load(file: files.path("a.yaml")),
                                      contains: ["cycle", "a.yaml -> ", "b.yaml -> ", "c.yaml -> "])
        guard case let .inheritanceCycle(chain)? = error?.kind else {
            return XCTFail("wrong kind: \(String(describing: error))")
        }
        XCTAssertEqual(chain.map { ($0 as NSString).lastPathComponent }, ["a.yaml", "b.yaml", "c.yaml", "a.yaml"])
    }

    func testSelfInclusionIsACycle() throws {
        try files.write("self.yaml", "_base_: ./self.yaml\n")
        assertConfigError(try loader.load(file: files.path("self.yaml")), contains: ["cycle", "self.yaml"])
    }

    func testDiamondIsNotACycle() throws {
        try files.write("common.yaml", "seed: 9\n")
        try files.write("left.yaml", "_base_: common.yaml\ntrain: {epochs: 2}\n")
        try files.write("right.yaml", "_base_: common.yaml\ntrain: {batch_size: 8}\n")
        let config = try load("_base_: [left.yaml, right.yaml]\n")
        XCTAssertEqual(config.int("seed"), 9)
        XCTAssertEqual(config.int("train.epochs"), 2)
        XCTAssertEqual(config.int("train.batch_size"), 8)
    }

    func testMissingBaseNamesIncludingFileAndLine() throws {
        let error = assertConfigError(try load("seed: 1\n_base_: nope.yaml\n"),
                                      contains: ["nope.yaml", "config.yaml:2"])
        guard case .unreadableFile? = error?.kind else { return XCTFail("wrong kind: \(String(describing: error))") }
    }

    func testBadBaseAndBadDelete() throws {
        assertConfigError(try load("_base_: {a: 1}\n"), contains: ["_base_", "a map"])
        assertConfigError(try load("model:\n  vit:\n    _delete_: maybe\n"), contains: ["model.vit._delete_", "maybe"])
    }
}
