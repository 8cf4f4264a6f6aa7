import LorsCheckpoint
import LorsDistributed
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
///
/// In-process replicas (no MPI; rank 0 alone opens the file, see `CheckpointState`): each state tensor is gathered
/// from its owner to rank 0, whose writer describes it whole, so the file is the one MPI ranks of that world size
/// write; on load rank 0 reads every tensor and broadcasts each to its owner under this run's partition.
public final class ZeRO1CheckpointState: CheckpointState {
    public let sharded: ShardedOptimizer
    /// The ranks the optimizer is sharded over.
    public var communicator: any Communicator { sharded.communicator }
    private var rank: Int { sharded.communicator.rank }

    public init(sharded: ShardedOptimizer) {
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
        // A writer over fewer ranks than the shards (in-process replicas): rank 0 writes everything.
        let gatherToRoot = writer.communicator.size != communicator.size
        if gatherToRoot && writer.communicator.size != 1 {
            throw DistributedError.usage("ZeRO-1 checkpoint: a writer over \(writer.communicator.size) ranks for optimizer shards of "
                                         + "\(communicator.size) ranks (expected the same ranks, or one writer)")
        }
        writer.addModel(model)
        let local = sharded.localOptimizer
        let state = local.stateDictionary()
        let names = dottedNames(model)
        writer.add(CheckpointLayout.optimizerPath(parameter: nil, state: "step"), shape: [], values: [Float(local.stepCount)])
        let localKeys = Dictionary(local.parameters.enumerated().map { (ObjectIdentifier($1), key($1, index: $0)) },
                                   uniquingKeysWith: { a, _ in a })
        for (index, p) in sharded.parameters.enumerated() {
            let owner = sharded.owner(ofParameterAt: index)
            let mine = owner == rank
            let dotted = names[ObjectIdentifier(p)] ?? key(p, index: index)
            for (stateName, scalar) in Self.stateNames(of: local) {
                let shape = scalar ? [] : p.shape, count = scalar ? 1 : p.count
                var values: [Float] = []
                if mine {
                    values = localKeys[ObjectIdentifier(p)].flatMap { state[$0 + "/" + stateName]?.toArray() }
                        ?? [Float](repeating: 0, count: count)
                }
                if gatherToRoot {
                    if owner != 0 {
                        let gathered = try communicator.gather(bytes: mine ? values.withUnsafeBytes { Array($0) } : [], root: 0)
                        if rank == 0 { values = try Self.floats(gathered[owner], count: count, dataset: dotted + "/" + stateName, owner: owner) }
                    }
                    if rank == 0 {
                        writer.addOptimizerStateShard(parameter: dotted, state: stateName, shape: shape, range: 0..<count, values: values)
                    }
                } else {
                    writer.addOptimizerStateShard(parameter: dotted, state: stateName, shape: shape,
                                                  range: mine ? 0..<count : 0..<0, values: values)
                }
            }
        }
    }

    /// `count` floats from the bytes rank `owner` sent.
    private static func floats(_ bytes: [UInt8], count: Int, dataset: String, owner: Int) throws -> [Float] {
        guard bytes.count == count * MemoryLayout<Float>.size else {
            throw DistributedError.usage("ZeRO-1 checkpoint: rank \(owner) sent \(bytes.count) bytes of '\(dataset)', expected \(count) floats")
        }
        return bytes.withUnsafeBytes { raw in (0..<count).map { raw.loadUnaligned(fromByteOffset: $0 * MemoryLayout<Float>.size, as: Float.self) } }
    }

    public func load(from reader: CheckpointReader?, model: Module, optimizer: any Optimizer) throws {
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
        let tensors: [Tensor?]
        if communicator.sharesFileAccess {
            let reader = try requireReader(reader, rank: rank)
            try reader.loadModel(into: model)
            tensors = try reader.readTensors(requests)
        } else {
            // In-process replicas: rank 0 reads the model and every state tensor, then broadcasts the model and
            // each state tensor (its owner keeps it).
            var read: [Tensor?] = []
            try communicator.agreeOnRootRead(reader) { reader in
                try reader.loadModel(into: model)
                read = try reader.readTensors(requests.map { ($0.path, $0.shape, nil) })
            }
            try ReplicaSynchronization.broadcastInitialState(model.namedParameters() + model.namedBuffers(), communicator: communicator)
            var received: [Tensor?] = []
            for (index, request) in requests.enumerated() {
                let keeps = request.owner == nil || request.owner == rank
                if request.owner == 0 {   // rank 0's own state stays where it was read
                    received.append(keeps ? read[index] : nil)
                    continue
                }
                var values = rank == 0 ? read[index]!.toArray() : [Float](repeating: 0, count: request.shape.reduce(1, *))
                try communicator.broadcast(&values, root: 0)
                received.append(!keeps ? nil : rank == 0 ? read[index] : Tensor(values, shape: request.shape))
            }
            tensors = received
        }
        var state: [String: Tensor] = [:]
        for (key, tensor) in zip(stateKeys, tensors) {
            if let key, let tensor { state[key] = tensor }
        }
        do {
            try local.loadStateDictionary(adopting: state)
        } catch {
            throw CheckpointError.optimizerState(file: reader?.path ?? "checkpoint (rank \(rank), state from rank 0)", detail: "\(error)")
        }
    }

    public func optimizerMetadata(_ optimizer: any Optimizer) -> OptimizerMetadata {
        OptimizerMetadata(describing: sharded.localOptimizer)
    }
}
