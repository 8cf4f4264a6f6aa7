import LorsCheckpoint
import LorsDistributed
import LorsNative
import LorsNN
import LorsOptim
import LorsTensor

/// Checkpoint state of a ZeRO-1 run (`dist.zero1`): the model is replicated (the writer splits its tensors between
/// the ranks), the optimizer state of each parameter is written by the rank that owns it (`ShardedOptimizer.ranges`)
/// and read back by whichever rank owns it in the run that loads it, so N writers → M readers re-partitions it.
///
/// Every rank describes every `/optimizer/<parameter>/<state>` dataset (state names from the optimizer type: AdamW
/// `exp_avg`, `exp_avg_sq`, `step`; SGD with momentum `momentum_buffer`); the owner gives the whole range, the other
/// ranks an empty one. An owned parameter without state yet (never had a gradient) is written as zeros, which AdamW
/// and SGD treat like fresh state. `/optimizer/step` (the step count) is replicated.
public final class ZeRO1CheckpointState: CheckpointState {
    public let comm: MPIComm?
    public let sharded: ShardedOptimizer
    private var rank: Int { sharded.communicator.rank }

    public init(comm: MPIComm?, sharded: ShardedOptimizer) {
        self.comm = comm
        self.sharded = sharded
    }

    /// State tensors per parameter of `optimizer`'s type (nil: a 0-d tensor, else the parameter's shape).
    static func stateNames(of optimizer: any Optimizer) -> [(name: String, scalar: Bool)] {
        if optimizer is AdamW { return [("exp_avg", false), ("exp_avg_sq", false), ("step", true)] }
        if let sgd = optimizer as? SGD { return sgd.momentum != 0 ? [("momentum_buffer", false)] : [] }
        return []
    }

    private func dottedNames(_ model: Module) -> [ObjectIdentifier: String] {
        var names: [ObjectIdentifier: String] = [:]
        for (name, tensor) in model.namedParameters() where names[ObjectIdentifier(tensor)] == nil { names[ObjectIdentifier(tensor)] = name }
        return names
    }

    private func key(_ p: Tensor, index: Int) -> String { p.name.isEmpty ? "param.\(index)" : p.name }

    public func describe(into writer: CheckpointWriter, model: Module, optimizer: any Optimizer) throws {
        writer.addModel(model)
        let local = sharded.localOptimizer
        let state = local.stateDictionary()
        let names = dottedNames(model)
        writer.add(CheckpointLayout.optimizerPath(parameter: nil, state: "step"), shape: [], values: [Float(local.stepCount)])
        let localKeys = Dictionary(local.parameters.enumerated().map { (ObjectIdentifier($1), key($1, index: $0)) },
                                   uniquingKeysWith: { a, _ in a })
        for (index, p) in sharded.parameters.enumerated() {
            let mine = sharded.owner(ofParameterAt: index) == rank
            let dotted = names[ObjectIdentifier(p)] ?? key(p, index: index)
            for (stateName, scalar) in Self.stateNames(of: local) {
                let shape = scalar ? [] : p.shape, count = scalar ? 1 : p.count
                var values: [Float] = []
                if mine {
                    values = localKeys[ObjectIdentifier(p)].flatMap { state[$0 + "/" + stateName]?.toArray() }
                        ?? [Float](repeating: 0, count: count)
                }
                writer.addOptimizerStateShard(parameter: dotted, state: stateName, shape: shape,
                                              range: mine ? 0..<count : 0..<0, values: values)
            }
        }
    }

    public func load(from reader: CheckpointReader, model: Module, optimizer: any Optimizer) throws {
        try reader.loadModel(into: model)
        let local = sharded.localOptimizer
        let names = dottedNames(model)
        let localKeys = Dictionary(local.parameters.enumerated().map { (ObjectIdentifier($1), key($1, index: $0)) },
                                   uniquingKeysWith: { a, _ in a })
        // One collective read: `/optimizer/step` on every rank, each parameter's state only on the rank that owns it
        // under this run's partition (which checks its checksums); the ranks agree on any problem.
        var requests: [(path: String, shape: [Int], owner: Int?)] = [
            (CheckpointLayout.optimizerPath(parameter: nil, state: "step"), [], nil),
        ]
        var stateKeys: [String?] = ["step"]
        for (index, p) in sharded.parameters.enumerated() {
            let owner = sharded.owner(ofParameterAt: index)
            let dotted = names[ObjectIdentifier(p)] ?? key(p, index: index)
            for (stateName, scalar) in Self.stateNames(of: local) {
                requests.append((CheckpointLayout.optimizerPath(parameter: dotted, state: stateName), scalar ? [] : p.shape, owner))
                stateKeys.append(owner == rank ? localKeys[ObjectIdentifier(p)].map { $0 + "/" + stateName } : nil)
            }
        }
        let tensors = try reader.readTensors(requests)
        var state: [String: Tensor] = [:]
        for (key, tensor) in zip(stateKeys, tensors) {
            if let key, let tensor { state[key] = tensor }
        }
        do {
            try local.loadStateDictionary(adopting: state)
        } catch {
            throw CheckpointError.optimizerState(file: reader.path, detail: "\(error)")
        }
    }

    public func optimizerMetadata(_ optimizer: any Optimizer) -> OptimizerMetadata {
        OptimizerMetadata(describing: sharded.localOptimizer)
    }
}
