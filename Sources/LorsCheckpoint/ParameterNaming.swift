import LorsNN
import LorsOptim
import LorsTensor

/// Maps between a model's dotted parameter names (the checkpoint keys) and the keys of an optimizer's
/// `stateDictionary()` (`<tensor.name>/<state>`, or `param.<index>/<state>` for unnamed tensors).
///
/// The mapping goes through tensor identity, so it works whether or not the parameters' `name`s were set to their
/// dotted paths. (They must be unique for `AdamW`/`SGD` to accept them: call `assignDottedParameterNames(_:)` before
/// building the optimizer.)
public struct OptimizerKeyMapping {
    /// Dotted model name by optimizer key prefix.
    public let dottedNameByKey: [String: String]
    /// Optimizer key prefix by dotted model name.
    public let keyByDottedName: [String: String]

    public init(optimizer: Optimizer, model: Module) {
        var dottedByIdentity: [ObjectIdentifier: String] = [:]
        for (name, tensor) in model.namedParameters() where dottedByIdentity[ObjectIdentifier(tensor)] == nil {
            dottedByIdentity[ObjectIdentifier(tensor)] = name
        }
        var dottedNameByKey: [String: String] = [:], keyByDottedName: [String: String] = [:]
        for (index, parameter) in optimizer.parameters.enumerated() {
            let key = parameter.name.isEmpty ? "param.\(index)" : parameter.name
            let dotted = dottedByIdentity[ObjectIdentifier(parameter)] ?? key
            dottedNameByKey[key] = dotted
            keyByDottedName[dotted] = key
        }
        self.dottedNameByKey = dottedNameByKey
        self.keyByDottedName = keyByDottedName
    }

    /// Splits an optimizer state key into (dotted parameter name or nil for the global `step`, state name).
    func checkpointName(forKey key: String) -> (parameter: String?, state: String) {
        guard let slash = key.lastIndex(of: "/") else { return (nil, key) }
        let prefix = String(key[..<slash]), state = String(key[key.index(after: slash)...])
        return (dottedNameByKey[prefix] ?? prefix, state)
    }
}

/// Sets every parameter tensor's `name` to its full dotted path (`blocks.0.attn.qkv.weight`), so optimizer state keys,
/// error messages and checkpoint keys agree. Shared tensors get their first name.
public func assignDottedParameterNames(_ model: Module) {
    for (name, tensor) in model.namedParameters() { tensor.name = name }
}
