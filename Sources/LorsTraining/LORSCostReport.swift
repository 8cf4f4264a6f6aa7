import Foundation
import LorsModels
import LorsNative
import LorsNN

/// Which evaluation path each LORS layer of a model takes, and its forward cost, at a stated input size
/// (`lors params --flops`). Costs are multiply-adds (MACs) of one forward pass; FLOPs = 2 × MACs.
///
/// - ViT: every `LORSTLayer` (qkv, proj, fc1, fc2 of each block) for `batch` images of `tokens` tokens, i.e.
///   n = batch·tokens rows: materialised `out·in·K·r + n·in·out`, factored `n·in·out + n·K·r·(in + out)`.
/// - AdaMixer: the LORS mixing of each stage (M, S: LORSA incl. generating them from the queries; W_o: LORST) for
///   `batch` images × `queries` queries (see `FactorizedAdaptiveMixing.flopReport`). Backbone, neck and the rest of
///   the decoder are not LORS layers and are not counted.
public struct LORSCostReport: Sendable, Equatable {
    public struct Line: Sendable, Equatable {
        public var layer: String
        public var materialized: Bool
        public var materializedMACs: Int
        public var factoredMACs: Int
        public var chosenMACs: Int { materialized ? materializedMACs : factoredMACs }
    }

    /// The input size the costs are for, in words.
    public var input: String
    public var lines: [Line]

    public var chosenMACs: Int { lines.reduce(0) { $0 + $1.chosenMACs } }
    public var materializedMACs: Int { lines.reduce(0) { $0 + $1.materializedMACs } }
    public var factoredMACs: Int { lines.reduce(0) { $0 + $1.factoredMACs } }

    /// nil when the model has no LORS layers.
    public init?(model: Module, batch: Int) {
        precondition(batch > 0, "batch must be positive")
        if let vit = model as? VisionTransformer {
            let c = vit.config, rows = batch * c.tokens
            input = "batch \(batch) × \(c.tokens) tokens (\(c.imageSize)×\(c.imageSize) images, patch \(c.patchSize)) = \(rows) rows"
            lines = []
            for (i, b) in vit.blocks.enumerated() {
                for (role, layer) in [("attn.qkv", b.attn.qkv), ("attn.proj", b.attn.proj), ("mlp.fc1", b.mlp.fc1), ("mlp.fc2", b.mlp.fc2)] {
                    guard let l = layer as? LORSTLayer else { continue }
                    lines.append(Line(layer: "blocks.\(i).\(role) (LORST, K·r = \(l.totalRank))", materialized: l.materializes(rows: rows),
                                      materializedMACs: l.materializedCost(rows: rows), factoredMACs: l.factoredCost(rows: rows)))
                }
            }
        } else if let detector = model as? AdaMixerDetector, let mixing = detector.decoder.lorsMixing {
            let c = detector.config
            input = "batch \(batch) × \(c.numQueries) queries (G \(c.samplingGroups), P_in \(c.inPoints), P_out \(c.outPoints))"
            lines = mixing.flopReport(batch: batch, queries: c.numQueries).map { cost in
                let kind = cost.weight == "W_o" ? "LORST" : "LORSA"
                return Line(layer: "decoder.mixing stage \(cost.stage) \(cost.weight) (\(kind))", materialized: cost.materialized,
                            materializedMACs: cost.materializedMACs, factoredMACs: cost.factoredMACs)
            }
        } else {
            return nil
        }
        if lines.isEmpty { return nil }
    }

    /// One line per LORS layer: path, GFLOPs of the chosen path and of both paths, then the totals.
    public var table: String {
        func gflops(_ macs: Int) -> String { String(format: "%10.4f", 2 * Double(macs) / 1e9) }
        func pad(_ s: String, _ w: Int) -> String { s.count >= w ? s : s + String(repeating: " ", count: w - s.count) }
        var out = ["LORS layers, forward GFLOPs (2 × multiply-adds) at \(input):",
                   pad("layer", 52) + pad("path", 14) + "    chosen materialised   factored"]
        for l in lines {
            out.append(pad(l.layer, 52) + pad(l.materialized ? "materialised" : "factored", 14)
                       + gflops(l.chosenMACs) + " " + gflops(l.materializedMACs) + " " + gflops(l.factoredMACs))
        }
        out.append(pad("total LORS layers", 66) + gflops(chosenMACs) + " " + gflops(materializedMACs) + " " + gflops(factoredMACs))
        return out.joined(separator: "\n")
    }

    /// `{"input": …, "total_flops": …, "layers": [{"layer", "path", "flops", "materialized_flops", "factored_flops"}]}`.
    public var jsonObject: JSONObject {
        ["input": .string(input), "total_flops": .int(2 * chosenMACs),
         "layers": .array(lines.map {
             ["layer": .string($0.layer), "path": $0.materialized ? "materialized" : "factored", "flops": .int(2 * $0.chosenMACs),
              "materialized_flops": .int(2 * $0.materializedMACs), "factored_flops": .int(2 * $0.factoredMACs)]
         })]
    }
}
