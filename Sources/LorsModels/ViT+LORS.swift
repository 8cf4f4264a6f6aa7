import LorsTensor
import LorsNN

/// LORS settings of a DeiT encoder (docs/lors.md): per-group rank r and per-layer group counts.
public struct LORSViTConfiguration: Sendable {
    /// Block roles that may be made static-LORS.
    public static let allRoles = ["qkv", "proj", "fc1", "fc2"]

    /// Rank r of one group.
    public var rank = 32
    /// Groups K_i of qkv and proj in block i (default [1×9, 2, 4, 6]: more rank in the top layers).
    public var attentionGroups: [Int] = [Int](repeating: 1, count: 9) + [2, 4, 6]
    /// Groups K_i of fc1 and fc2 in block i (default [6, 4, 2, 1×9]: more rank in the bottom layers).
    public var feedForwardGroups: [Int] = [6, 4, 2] + [Int](repeating: 1, count: 9)
    /// Roles built as LORST layers; the others stay dense `Linear`s.
    public var targets: Set<String> = Set(LORSViTConfiguration.allRoles)

    public init() {}

    /// Groups of `role` in block `layer`.
    public func groups(role: String, layer: Int) -> Int {
        let list = role == "qkv" || role == "proj" ? attentionGroups : feedForwardGroups
        precondition(layer < list.count, "LORS groups for \(role) list \(list.count) layers, block \(layer) requested")
        return list[layer]
    }
}

/// Builds LORST layers for the targeted roles (one `LORSTShared` per role, shared by every block) and
/// dense `Linear`s for the rest (as `DenseLinearFactory`).
///
/// Shared weights: qkv and proj truncated normal σ = 0.02, fc1 and fc2 Xavier-uniform (docs/lors.md);
/// private A Kaiming (a = 0), B and biases zero. Pass the factory to `VisionTransformer`, which registers
/// `extraModules` as `lors`, so the shared tensors are `lors.qkv.weight`, … and the private ones
/// `blocks.3.attn.qkv.A`, `.B`, `.bias`.
public final class LORSLinearFactory: BlockLinearFactory {
    public let configuration: LORSViTConfiguration
    /// Shared modules by role, in creation order (children of `extraModules`).
    public private(set) var sharedModules: [String: LORSTShared] = [:]
    private let holder = Module()

    public init(_ configuration: LORSViTConfiguration = LORSViTConfiguration()) {
        for role in configuration.targets {
            precondition(LORSViTConfiguration.allRoles.contains(role), "unknown LORS target '\(role)' (expected one of \(LORSViTConfiguration.allRoles))")
        }
        self.configuration = configuration
    }

    public var extraModules: Module? { sharedModules.isEmpty ? nil : holder }

    public func makeLinear(layer: Int, role: String, inFeatures: Int, outFeatures: Int, bias: Bool) -> Module & TensorMap {
        guard configuration.targets.contains(role) else {
            return DenseLinearFactory().makeLinear(layer: layer, role: role, inFeatures: inFeatures, outFeatures: outFeatures, bias: bias)
        }
        let shared: LORSTShared
        if let existing = sharedModules[role] {
            precondition(existing.inFeatures == inFeatures && existing.outFeatures == outFeatures,
                         "LORS shared \(role) is [\(existing.outFeatures), \(existing.inFeatures)], block \(layer) asks [\(outFeatures), \(inFeatures)]")
            shared = existing
        } else {
            let initializer: Initializer = role == "qkv" || role == "proj"
                ? .truncatedNormal(std: 0.02) : .xavierUniform(fanIn: inFeatures, fanOut: outFeatures)
            shared = LORSTShared(inFeatures, outFeatures, initializer: initializer)
            sharedModules[role] = shared
            holder.child(role, shared)
        }
        return LORSTLayer(shared: shared, rank: configuration.rank, groups: configuration.groups(role: role, layer: layer), bias: bias)
    }
}
