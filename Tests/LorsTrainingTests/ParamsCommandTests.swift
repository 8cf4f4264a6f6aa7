import Foundation
import XCTest
@testable import LorsCLI

/// `lors params` through the command itself (argument parsing, config loading, model building, printing), with the
/// JSON parsed back: the ViT components of docs/interfaces.md, the DeiT LORS/vanilla encoder ratio of docs/lors.md, the
/// shared vs private LORS rows of the table, and `--flops`.
final class ParamsCommandTests: XCTestCase {
    func output(_ arguments: [String]) throws -> String {
        let config = ParamsTests.root.appendingPathComponent("configs/\(arguments[0]).yaml").path
        let command = try XCTUnwrap(try LorsCommand.parseAsRoot(["params", config] + arguments.dropFirst()) as? ParamsCommand)
        return try command.output()
    }

    func json(_ arguments: [String]) throws -> [String: Any] {
        try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(try output(arguments + ["--json"]).utf8)) as? [String: Any])
    }

    func components(_ object: [String: Any]) throws -> [String: Int] {
        try XCTUnwrap(object["components"] as? [String: Int])
    }

    func testDeiTTinyLORSEncoderRatioThroughTheCommand() throws {
        let vanilla = try json(["deit_tiny_cifar100"]), lors = try json(["deit_tiny_lors_cifar100"])
        for object in [vanilla, lors] {
            let parts = try components(object)
            XCTAssertEqual(Set(parts.keys), ["embed", "encoder", "head"])
            // embed: patch conv 192·3·4·4 + bias 192, cls token 192, pos embed 65·192; head: LN 2·192 + Linear 192→100.
            XCTAssertEqual(parts["embed"], 192 * 48 + 192 + 192 + 65 * 192)
            XCTAssertEqual(parts["head"], 2 * 192 + 192 * 100 + 100)
            XCTAssertEqual(object["total"] as? Int, parts.values.reduce(0, +))
            XCTAssertEqual(object["trainable"] as? Int, object["total"] as? Int, "nothing is frozen in the ViT")
        }
        let v = try XCTUnwrap(try components(vanilla)["encoder"]), l = try XCTUnwrap(try components(lors)["encoder"])
        XCTAssertEqual(v, 5_338_368)
        XCTAssertEqual(l, 2_536_704)
        XCTAssertEqual(String(format: "%.2f", 100 * Double(l) / Double(v)), "47.52")
    }

    func testViTTableShowsSharedAndPrivateLORSParts() throws {
        let table = try output(["deit_tiny_lors_cifar100"])
        func count(_ prefix: String) throws -> Int {
            let line = try XCTUnwrap(table.split(separator: "\n").first { $0.trimmingCharacters(in: .whitespaces).hasPrefix(prefix) },
                                     "no row '\(prefix)' in\n\(table)")
            return try XCTUnwrap(line.split(separator: " ").compactMap { Int($0) }.first, String(line))
        }
        // Shared W_sh (no bias): qkv 576·192, proj 192·192, fc1 768·192, fc2 192·768.
        XCTAssertEqual(try count("lors.* (LORS shared by all blocks)"), 576 * 192 + 192 * 192 + 2 * 768 * 192)
        // Private: Σ ranks 672 for attention and for the FFN; A + B per rank: qkv 768, proj 384, fc1 960, fc2 960;
        // private biases 576 + 192 + 768 + 192 per block.
        XCTAssertEqual(try count("blocks (LORS private: A, B, bias)"), 672 * (768 + 384 + 960 + 960) + 12 * 1728)
        XCTAssertEqual(try count("blocks (dense and norms)"), 12 * 4 * 192)
        XCTAssertEqual(try count("encoder"), 2_536_704)
        XCTAssertFalse(try output(["deit_tiny_cifar100"]).contains("LORS"))
    }

    /// LORST in DeiT-tiny materialises W_i once rows n ≥ out·in/(in + out): proj 96, qkv 144, fc1/fc2 153.6. One
    /// 32×32 image is 65 rows (all factored), four are 260 (all materialised).
    func testFlopsPathChoiceForTheViT() throws {
        let one = try XCTUnwrap(try json(["deit_tiny_lors_cifar100", "--flops"])["lors_flops"] as? [String: Any])
        let layers = try XCTUnwrap(one["layers"] as? [[String: Any]])
        XCTAssertEqual(layers.count, 48)
        XCTAssertTrue(layers.allSatisfy { $0["path"] as? String == "factored" })
        XCTAssertEqual(one["total_flops"] as? Int, layers.reduce(0) { $0 + ($1["flops"] as! Int) })
        // blocks.0 qkv: K·r = 32, 65 rows: 2·(65·192·576 + 65·32·(192 + 576)).
        XCTAssertEqual(layers[0]["flops"] as? Int, 2 * (65 * 192 * 576 + 65 * 32 * 768))
        let four = try XCTUnwrap(try json(["deit_tiny_lors_cifar100", "--flops", "--batch", "4"])["lors_flops"] as? [String: Any])
        XCTAssertTrue(try XCTUnwrap(four["layers"] as? [[String: Any]]).allSatisfy { $0["path"] as? String == "materialized" })
        let table = try output(["deit_tiny_lors_cifar100", "--flops"])
        XCTAssertTrue(table.contains("batch 1 × 65 tokens"), table)
        XCTAssertTrue(table.contains("blocks.11.mlp.fc2 (LORST, K·r = 32)"), table)
        XCTAssertTrue(try output(["deit_tiny_cifar100", "--flops"]).contains("no LORS layers"))
    }

    func testFlopsForTheLORSDetector() throws {
        let object = try json(["adamixer_r50_lors_1x_coco", "--flops"])
        XCTAssertEqual(try components(object)["decoder"], 35_348_264)
        let costs = try XCTUnwrap(object["lors_flops"] as? [String: Any])
        let layers = try XCTUnwrap(costs["layers"] as? [[String: Any]])
        XCTAssertEqual(layers.count, 18)
        XCTAssertEqual(layers.filter { ($0["layer"] as! String).contains(" M ") }.map { $0["path"] as! String }, Array(repeating: "factored", count: 6))
        XCTAssertEqual(layers.filter { ($0["layer"] as! String).contains(" S ") }.map { $0["path"] as! String }, Array(repeating: "materialized", count: 6))
    }
}
