import Foundation
import XCTest
import LorsConfig
import LorsTraining

/// `lors params` counts for the shipped configs and the paper's ablation settings (docs/lors.md): exact integers where
/// docs/lors.md gives them, otherwise the value in millions to the printed 0.01M.
final class ParamsTests: XCTestCase {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    func report(_ config: String, _ overrides: [String] = []) throws -> ParameterReport {
        let path = ParamsTests.root.appendingPathComponent("configs/\(config).yaml").path
        return ParameterReport(settings: RunSettings(try ConfigLoader(schema: .lors).load(file: path, overrides: overrides)).model)
    }

    func millions(_ n: Int) -> Double { (Double(n) / 1e4).rounded() / 100 }

    func testVanillaR50() throws {
        let r = try report("adamixer_r50_1x_coco")
        XCTAssertEqual(r.components, ["backbone": 23_508_032, "neck": 984_576, "query": 26_000, "decoder": 110_272_296])
        XCTAssertEqual(r.total, 134_790_904)
        XCTAssertEqual(millions(r.total), 134.79)
        // frozen_stages=1: stem (9,536) and layer1 (215,808) are not trainable.
        XCTAssertEqual(r.trainable, 134_790_904 - 225_344)
        XCTAssertEqual(r.json, "{\"total\":134790904,\"trainable\":134565560,\"components\":"
                       + "{\"backbone\":23508032,\"neck\":984576,\"query\":26000,\"decoder\":110272296}}")
    }

    func testLORSR50() throws {
        let r = try report("adamixer_r50_lors_1x_coco")
        XCTAssertEqual(r.components["decoder"], 9_407_784 + 25_940_480)
        XCTAssertEqual(millions(r.components["decoder"]!), 35.35)
        XCTAssertEqual(r.total, 59_866_872)
        XCTAssertEqual(millions(r.total), 59.87)
        let shared = r.rows.first { $0.group.hasPrefix("mixing.shared") }?.count
        XCTAssertEqual(shared, 12_632_064 + 8_388_608)
    }

    func testR101LORS300Queries() throws {
        let r = try report("adamixer_r101_lors_300q_3x_coco")
        XCTAssertEqual(r.components["query"], 300 * (4 + 256))
        XCTAssertEqual(r.components["backbone"], 42_500_160)
        XCTAssertEqual(r.total, 78_911_000)
        XCTAssertEqual(millions(r.total), 78.91)
    }

    func testR50LORS300Queries() throws {
        let r = try report("adamixer_r50_lors_300q_3x_coco")
        // The R-50 LORS model plus 200 more queries (box 4 + content 256 each).
        XCTAssertEqual(r.total, 59_866_872 + 200 * (4 + 256))
        XCTAssertEqual(millions(r.total), 59.92)
        XCTAssertEqual(r.components["decoder"], 9_407_784 + 25_940_480)
    }

    /// The CPU detector of the fmnist_det configs, counted from the layer formulas: C = 64, FFN 256, 8 heads, 10 classes,
    /// P_out 64, 6 stages; vanilla G = 4, P_in = 16; LORS G = 2, P_in = 32, LORSA r = 4, K = [1,1,2,2,3,3], LORST r = 2.
    /// The LORS decoder is at most 35% of the vanilla one.
    func testFashionMNISTDetectorCounts() throws {
        let c = 64, ffn = 256, classes = 10, pOut = 64, stages = 6
        func linear(_ i: Int, _ o: Int) -> Int { i * o + o }
        // attention (qkv, proj, norm, tau), offsets, FFN + norm, class and box heads (Linear, LN, Linear).
        func unchanged(groups g: Int, inPoints p: Int) -> Int {
            linear(c, 3 * c) + linear(c, c) + 2 * c + 8 + linear(c, g * p * 3) + linear(c, ffn) + linear(ffn, c) + 2 * c
                + linear(c, c) + 2 * c + linear(c, classes) + linear(c, c) + 2 * c + linear(c, 4)
        }
        let g = 4, p = 16, cg = c / g
        let vanillaMixing = linear(c, g * (cg * cg + p * pOut)) + linear(g * pOut * cg, c) + 2 * c
        let vanilla = stages * (unchanged(groups: g, inPoints: p) + vanillaMixing)
        XCTAssertEqual(try report("fmnist_det_adamixer").components["decoder"], vanilla)
        XCTAssertEqual(vanilla, 4_002_564)

        let gl = 2, pl = 32, cgl = c / gl, r = 4, k = [1, 1, 2, 2, 3, 3], rt = 2, flat = gl * pOut * cgl
        let shared = linear(c, gl * (cgl * cgl + pl * pOut)) + c * flat
        let lorsa = k.map { k in linear(c, 2 * gl * k * r * r) + gl * k * (cgl * r + r * cgl + pOut * r + r * pl) }.reduce(0, +)
        let lorst = stages * (rt * flat + c * rt + c + 2 * c)
        let lors = stages * unchanged(groups: gl, inPoints: pl) + shared + lorsa + lorst
        let lorsReport = try report("fmnist_det_adamixer_lors")
        XCTAssertEqual(lorsReport.components["decoder"], lors)
        XCTAssertEqual(lors, 1_209_604)
        XCTAssertLessThanOrEqual(Double(lors), 0.35 * Double(vanilla), "the LORS decoder's share of the vanilla decoder")
        // Backbone: ResNet-18 at width 32 with GroupNorm (its affines only), nothing frozen.
        func conv(_ i: Int, _ o: Int, _ k: Int) -> Int { i * o * k * k }
        var backbone = conv(3, 32, 7) + 2 * 32
        var inChannels = 32
        for stage in 0..<4 {
            let planes = 32 << stage
            for block in 0..<2 {
                backbone += conv(inChannels, planes, 3) + conv(planes, planes, 3) + 4 * planes
                if block == 0 && stage > 0 { backbone += conv(inChannels, planes, 1) + 2 * planes }
                inChannels = planes
            }
        }
        XCTAssertEqual(lorsReport.components["backbone"], backbone)
        XCTAssertEqual(backbone, 2_798_880)
        XCTAssertEqual(lorsReport.trainable, lorsReport.total, "frozen_stages -1")
    }

    func testVanillaVariants() throws {
        XCTAssertEqual(millions(try report("adamixer_r50_1x_coco", ["model.adamixer.sampling_groups=2", "model.adamixer.in_points=64"])
            .components["decoder"]!), 135.54)
        XCTAssertEqual(millions(try report("adamixer_r50_1x_coco", ["model.adamixer.num_queries=300"]).total), 134.84)
        XCTAssertEqual(millions(try report("adamixer_r50_1x_coco", ["model.adamixer.num_queries=300", "model.adamixer.backbone.depth=101"])
            .total), 153.84)
    }

    func lorsDecoder(_ overrides: [String]) throws -> Double {
        millions(try report("adamixer_r50_lors_1x_coco", overrides).components["decoder"]!)
    }

    func testTable6LORSARanksAndGroups() throws {
        XCTAssertEqual(try lorsDecoder(["model.adamixer.lors.lorsa_groups=[1,1,1,1,1,1]", "model.adamixer.lors.lorsa_rank=8"]), 32.46)
        XCTAssertEqual(try lorsDecoder(["model.adamixer.lors.lorsa_groups=[1,1,1,1,1,1]"]), 33.68)
        XCTAssertEqual(try lorsDecoder(["model.adamixer.lors.lorsa_groups=[2,2,2,2,2,2]"]), 35.35)
        XCTAssertEqual(try lorsDecoder([]), 35.35)
        XCTAssertEqual(try lorsDecoder(["model.adamixer.lors.lorsa_groups=[1,1,1,1,1,1]", "model.adamixer.lors.lorsa_rank=32"]), 38.51)
    }

    func testTable7LORSTRanks() throws {
        for (rank, expected) in [(2, 34.16), (4, 34.56), (8, 35.35), (16, 36.93), (32, 40.10)] {
            XCTAssertEqual(try lorsDecoder(["model.adamixer.lors.lorst_rank=\(rank)"]), expected, "LORST r=\(rank)")
        }
    }

    func testTable8NumberOfStages() throws {
        for (stages, groups, expected) in [(3, [1, 2, 3], 28.18), (6, [1, 1, 2, 2, 3, 3], 35.35),
                                           (9, [1, 1, 1, 2, 2, 2, 3, 3, 3], 42.51), (12, [1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3], 49.68)] {
            let lorsa = "[" + groups.map(String.init).joined(separator: ",") + "]"
            let lorst = "[" + [String](repeating: "1", count: stages).joined(separator: ",") + "]"
            XCTAssertEqual(try lorsDecoder(["model.adamixer.num_stages=\(stages)", "model.adamixer.lors.lorsa_groups=\(lorsa)",
                                            "model.adamixer.lors.lorst_groups=\(lorst)"]), expected, "N=\(stages)")
        }
    }

    func testMismatchedGroupListIsAConfigError() throws {
        XCTAssertThrowsError(try report("adamixer_r50_lors_1x_coco", ["model.adamixer.num_stages=3"])) { error in
            XCTAssertTrue("\(error)".contains("model.adamixer.lors.lorsa_groups"), "\(error)")
        }
    }

    func testViTComponents() throws {
        let config = try ConfigLoader(schema: .lors).load(yaml: "model: {type: vit}")
        let r = ParameterReport(settings: RunSettings(config).model)
        // DeiT-Tiny on 32×32, patch 4: embed = 192·48 + 192 + 192 + 65·192; head = LN 384 + 192·100 + 100.
        XCTAssertEqual(r.components["embed"], 192 * 48 + 192 + 192 + 65 * 192)
        XCTAssertEqual(r.components["encoder"], 5_338_368)
        XCTAssertEqual(r.components["head"], 384 + 19_300)
        XCTAssertEqual(r.total, r.components.values.reduce(0, +))
    }
}
