import Foundation
import XCTest
import LorsConfig
import LorsTraining

/// The committed configs load, the LORS variants differ from their bases only in `model.lors`, and the
/// CIFAR-100 config without its data fails naming the file.
final class ConfigFileTests: XCTestCase {
    /// `configs/` of this package (found from this file's path).
    private static let configs: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url.appendingPathComponent("configs").path
    }()

    private func load(_ name: String, _ overrides: [String] = []) throws -> Config {
        try ConfigLoader(schema: .lors).load(file: ConfigFileTests.configs + "/" + name, overrides: overrides)
    }

    func testLorsConfigsDifferOnlyInModelLors() throws {
        for (base, lors) in [("fmnist_vit.yaml", "fmnist_vit_lors.yaml"), ("deit_tiny_cifar100.yaml", "deit_tiny_lors_cifar100.yaml")] {
            let a = try load(base), b = try load(lors)
            XCTAssertFalse(a.bool("model.lors.enabled"))
            XCTAssertTrue(b.bool("model.lors.enabled"))
            let differing = a.values.keys.filter { a.values[$0] != b.values[$0] }.sorted()
            XCTAssertFalse(differing.isEmpty)
            XCTAssertTrue(differing.allSatisfy { $0.hasPrefix("model.lors.") }, "\(lors) also changes \(differing)")
        }
    }

    func testFashionMNISTConfigSettings() throws {
        let c = try load("fmnist_vit.yaml")
        XCTAssertEqual(c.string("data.dataset"), "fashion_mnist")
        XCTAssertEqual(c.double("data.augmentation.mixup_alpha"), 0)
        XCTAssertEqual(c.double("data.augmentation.cutmix_alpha"), 0)
        XCTAssertEqual(c.int("model.vit.image_size") / c.int("model.vit.patch_size"), 4, "16 tokens + cls")
    }

    func testDeiTConfigFollowsTheLORSRecipe() throws {
        let c = try load("deit_tiny_lors_cifar100.yaml")
        XCTAssertEqual(c.int("train.batch_size"), 1024)
        XCTAssertEqual(c.int("train.epochs"), 300)
        XCTAssertEqual(c.double("optimizer.lr"), 1e-3)
        XCTAssertEqual(c.int("lr_schedule.warmup_epochs"), 20)
        XCTAssertEqual(c.double("data.augmentation.label_smoothing"), 0.1)
        XCTAssertEqual(c.intList("model.lors.attn_groups"), [1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 4, 6])
        XCTAssertEqual(c.intList("model.lors.ffn_groups"), [6, 4, 2, 1, 1, 1, 1, 1, 1, 1, 1, 1])
        let missing = try load("deit_tiny_cifar100.yaml", ["data.root=/nonexistent/cifar"])
        XCTAssertThrowsError(try TrainingSetup.datasets(RunSettings(missing))) { error in
            XCTAssertTrue("\(error)".contains("/nonexistent/cifar/train.bin"), "\(error)")
        }
    }
}
