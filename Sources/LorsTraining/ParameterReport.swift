import LorsConfig
import LorsNative
import LorsNN

/// Parameter counts of a model by component (`lors params`, docs/interfaces.md).
///
/// Detector components: `backbone`, `neck`, `query`, `decoder` (the first name segment). ViT components: `embed`
/// (`patch_embed.*`, `cls_token`, `pos_embed`), `encoder` (`blocks.*`, the transformer blocks, and `lors.*`, the shared
/// LORS weights that only the blocks use), `head` (`norm.*`, `head.*`); any other name is a programming error.
/// Shared tensors are counted once (`Module.namedParameters`); `trainable` excludes parameters that do not require
/// gradients or sit under a `frozen` module. The table's groups separate shared LORS weights (`LORSTShared`,
/// `LORSAShared`) from the private per-layer parts (`LORSTLayer`, `LORSALayer`), found by module type.
public struct ParameterReport: Sendable, Equatable {
    /// One row of the detailed table.
    public struct Row: Sendable, Equatable {
        public var component: String
        /// A finer group inside the component (e.g. `stages (private)`, `mixing.shared (LORS, shared by all stages)`).
        public var group: String
        public var count: Int
        public var trainable: Int
    }

    /// Components in report order.
    public var componentNames: [String]
    /// Count per component.
    public var components: [String: Int]
    public var total: Int
    public var trainable: Int
    /// Detailed rows (per component, per group), in first-seen order.
    public var rows: [Row]

    /// Counts the unique parameters of `model` (`model.type` decides the component names).
    public init(model: Module, type: RunSettings.Model.Kind) {
        let names = type == .adamixer ? ["backbone", "neck", "query", "decoder"] : ["embed", "encoder", "head"]
        componentNames = names
        var components = Dictionary(uniqueKeysWithValues: names.map { ($0, 0) })
        var rows: [Row] = []
        var total = 0, trainable = 0
        let roles = ParameterRoles(model)
        for (name, tensor) in model.namedParameters() {
            let id = ObjectIdentifier(tensor)
            let (component, group) = type == .adamixer ? ParameterReport.detectorGroup(name)
                : ParameterReport.vitGroup(name, lorsShared: roles.lorsShared.contains(id), lorsPrivate: roles.lorsPrivate.contains(id))
            components[component, default: 0] += tensor.count
            total += tensor.count
            let t = tensor.requiresGrad && !roles.frozen.contains(id) ? tensor.count : 0
            trainable += t
            if let i = rows.firstIndex(where: { $0.component == component && $0.group == group }) {
                rows[i].count += tensor.count
                rows[i].trainable += t
            } else {
                rows.append(Row(component: component, group: group, count: tensor.count, trainable: t))
            }
        }
        self.components = components
        self.total = total
        self.trainable = trainable
        self.rows = rows
    }

    /// Builds the model of `settings` (uninitialised) and counts it.
    public init(settings: RunSettings.Model) {
        self.init(model: ModelBuilder.model(settings), type: settings.type)
    }

    static func detectorGroup(_ name: String) -> (String, String) {
        let parts = name.split(separator: ".").map(String.init)
        let component = parts[0]
        precondition(["backbone", "neck", "query", "decoder"].contains(component), "detector parameter '\(name)' outside every component")
        switch component {
        case "backbone": return (component, parts.count > 2 && parts[1].hasPrefix("layer") ? parts[1] : "stem")
        case "decoder":
            if parts.count > 2 && parts[1] == "mixing" {
                return (component, parts[2] == "shared" ? "mixing.shared (LORS, shared by all stages)"
                                                        : "mixing.private (LORS, per stage)")
            }
            if parts.count > 3 && parts[1] == "stages" && parts[3] == "mixing" { return (component, "stages.*.mixing (per stage)") }
            return (component, "stages (per stage, other)")
        default: return (component, parts.count > 1 ? parts[1] : component)
        }
    }

    static func vitGroup(_ name: String, lorsShared: Bool = false, lorsPrivate: Bool = false) -> (String, String) {
        let first = String(name.split(separator: ".")[0])
        switch first {
        case "patch_embed", "cls_token", "pos_embed": return ("embed", first)
        case "norm", "head": return ("head", first)
        case "lors": return ("encoder", lorsShared ? "lors.* (LORS shared by all blocks)" : "lors.*")
        case "blocks":
            return ("encoder", lorsPrivate ? "blocks (LORS private: A, B, bias)" : "blocks (dense and norms)")
        default: preconditionFailure("ViT parameter '\(name)' outside embed, encoder (blocks, lors) and head")
        }
    }

    /// `{"total": …, "trainable": …, "components": {…}}` with integer counts (components in report order).
    public var jsonObject: JSONObject {
        ["total": .int(total), "trainable": .int(trainable),
         "components": .object(JSONObject(componentNames.map { ($0, .int(components[$0] ?? 0)) }))]
    }

    /// `jsonObject` as one line of JSON.
    public var json: String { jsonObject.text() }

    /// Human-readable table: one line per component with its groups beneath.
    public var table: String {
        func millions(_ n: Int) -> String { String(format: "%9.2fM", Double(n) / 1e6) }
        func pad(_ s: String, _ w: Int) -> String { s.count >= w ? s : s + String(repeating: " ", count: w - s.count) }
        func lpad(_ s: String, _ w: Int) -> String { s.count >= w ? s : String(repeating: " ", count: w - s.count) + s }
        var lines = [pad("component", 52) + lpad("params", 13) + lpad("", 11) + lpad("trainable", 13)]
        for component in componentNames {
            let count = components[component] ?? 0
            let t = rows.filter { $0.component == component }.reduce(0) { $0 + $1.trainable }
            lines.append(pad(component, 52) + lpad("\(count)", 13) + millions(count) + " " + lpad("\(t)", 13))
            for row in rows where row.component == component {
                lines.append(pad("  " + row.group, 52) + lpad("\(row.count)", 13) + millions(row.count) + " " + lpad("\(row.trainable)", 13))
            }
        }
        lines.append(pad("total", 52) + lpad("\(total)", 13) + millions(total) + " " + lpad("\(trainable)", 13))
        return lines.joined(separator: "\n")
    }
}

/// Parameters classified by the module that owns them: under a `frozen` module, shared LORS weights
/// (`LORSTShared.weight`, `LORSAShared`'s generator) and private LORS parts (`LORSTLayer` A, B and bias;
/// `LORSALayer` L, R and core generator).
struct ParameterRoles {
    var frozen: Set<ObjectIdentifier> = []
    var lorsShared: Set<ObjectIdentifier> = []
    var lorsPrivate: Set<ObjectIdentifier> = []

    init(_ model: Module) { visit(model, frozenAbove: false) }

    private mutating func visit(_ module: Module, frozenAbove: Bool) {
        let frozen = frozenAbove || module.frozen
        if frozen { for p in module.ownParameters { self.frozen.insert(ObjectIdentifier(p.tensor)) } }
        switch module {
        case let m as LORSTShared: lorsShared.insert(ObjectIdentifier(m.weight))
        case let m as LORSAShared: for (_, t) in m.generator.namedParameters() { lorsShared.insert(ObjectIdentifier(t)) }
        case let m as LORSTLayer:
            for t in [m.A, m.B, m.bias].compactMap({ $0 }) { lorsPrivate.insert(ObjectIdentifier(t)) }
        case let m as LORSALayer:
            for t in m.left + m.right + (m.coreGenerator.map { [$0.weight, $0.bias].compactMap { $0 } } ?? []) {
                lorsPrivate.insert(ObjectIdentifier(t))
            }
        default: break
        }
        for (_, c) in module.children { visit(c, frozenAbove: frozen) }
    }
}
