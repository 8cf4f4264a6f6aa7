import XCTest
import LorsTensor
import LorsOptim

final class ParameterGroupTests: XCTestCase {
    private func named(_ specs: [(String, [Int])]) -> [(name: String, parameter: Tensor)] {
        specs.map { spec in
            let t = Tensor.zeros(spec.1, requiresGrad: true)
            t.name = spec.0
            return (name: spec.0, parameter: t)
        }
    }

    private let deitLike: [(String, [Int])] = [
        ("cls_token", [1, 1, 8]), ("pos_embed", [1, 5, 8]),
        ("patch_embed.proj.weight", [8, 3, 4, 4]), ("patch_embed.proj.bias", [8]),
        ("blocks.0.norm1.weight", [8]), ("blocks.0.norm1.bias", [8]),
        ("blocks.0.attn.qkv.weight", [24, 8]), ("blocks.0.attn.qkv.private_bias.0", [24]),
        ("token_embedding.weight", [10, 8]), ("norm.weight", [8]),
        ("head.weight", [4, 8]), ("head.bias", [4]),
    ]

    func testDefaultNoDecayRules() {
        let groups = ParameterGroup.grouped(named(deitLike), rules: [.noDecay()])
        XCTAssertEqual(groups.map(\.name), ["decay", "no_decay"])
        // Private biases live in a list, so they are not named "bias" and keep their decay (official DeiT-LORS code).
        XCTAssertEqual(groups[0].parameters.map(\.name),
                       ["patch_embed.proj.weight", "blocks.0.attn.qkv.weight", "blocks.0.attn.qkv.private_bias.0", "head.weight"])
        XCTAssertNil(groups[0].weightDecay)
        XCTAssertEqual(groups[1].parameters.map(\.name),
                       ["cls_token", "pos_embed", "patch_embed.proj.bias", "blocks.0.norm1.weight", "blocks.0.norm1.bias",
                        "token_embedding.weight", "norm.weight", "head.bias"])
        XCTAssertEqual(groups[1].weightDecay, 0)
    }

    func testOneDimensionalRuleAndCustomRules() {
        let rules = [
            ParameterGroupRule(name: "attention", patterns: ["blocks.*.attn.*"], learningRate: .multiplier(0.1), weightDecay: 0.2),
            ParameterGroupRule.noDecay(patterns: ["cls_token", "pos_embed"], matchesOneDimensional: true),
        ]
        let groups = ParameterGroup.grouped(named(deitLike), rules: rules, defaultName: "rest")
        XCTAssertEqual(groups.map(\.name), ["rest", "attention", "no_decay"])
        XCTAssertEqual(groups[0].parameters.map(\.name),
                       ["patch_embed.proj.weight", "token_embedding.weight", "head.weight"])
        // First matching rule wins: the 1-d private bias goes to "attention", not "no_decay".
        XCTAssertEqual(groups[1].parameters.map(\.name), ["blocks.0.attn.qkv.weight", "blocks.0.attn.qkv.private_bias.0"])
        XCTAssertEqual(groups[1].learningRate, .multiplier(0.1))
        XCTAssertEqual(groups[1].weightDecay, 0.2)
        XCTAssertEqual(groups[2].parameters.map(\.name),
                       ["cls_token", "pos_embed", "patch_embed.proj.bias", "blocks.0.norm1.weight", "blocks.0.norm1.bias",
                        "norm.weight", "head.bias"])
    }

    func testGroupingDeduplicatesSharedTensors() {
        var list = named([("shared.weight", [4, 4]), ("layers.0.bias", [4])])
        list.append((name: "layers.1.shared", parameter: list[0].parameter))   // the same tensor under a second name
        let groups = ParameterGroup.grouped(list, rules: [.noDecay()])
        XCTAssertEqual(groups.map { $0.parameters.count }, [1, 1])
        XCTAssertTrue(groups[0].parameters[0] === list[0].parameter)
    }

    func testEffectiveLearningRate() {
        let p = Tensor.zeros([1])
        XCTAssertEqual(ParameterGroup(parameters: [p], learningRate: .multiplier(0.5)).effectiveLearningRate(scheduled: 0.02, base: 0.1), 0.01)
        XCTAssertEqual(ParameterGroup(parameters: [p], learningRate: .absolute(0.4)).effectiveLearningRate(scheduled: 0.05, base: 0.1), 0.2, accuracy: 1e-15)
    }

    func testRuleMatching() {
        let rule = ParameterGroupRule(name: "x", patterns: ["*norm*", "bias", "a.*.c"], weightDecay: 0)
        XCTAssertTrue(rule.matches(name: "encoder.layernorm.weight", shape: [2, 2]))
        XCTAssertTrue(rule.matches(name: "x.bias", shape: [2, 2]))
        XCTAssertFalse(rule.matches(name: "x.private_bias", shape: [2, 2]))
        XCTAssertFalse(rule.matches(name: "x.biases.0", shape: [2, 2]))
        XCTAssertTrue(rule.matches(name: "a.b.b.c", shape: [2, 2]))
        XCTAssertFalse(rule.matches(name: "a.b.d", shape: [2, 2]))
        XCTAssertFalse(rule.matches(name: "x.weight", shape: [2]), "1-d only matches when asked")
    }
}
