import LorsData
import LorsNN
import LorsOptim
import LorsTensor
@testable import LorsDistributed

/// A LORS-like stack: `depth` residual layers that all use one shared weight `W [D, D]` plus a
/// private low-rank part `B_l A_l` and bias `b_l`, then a linear head:
/// `h ← h + tanh(h Wᵀ + (h A_lᵀ) B_lᵀ + b_l)`, logits = head(h).
final class SharedStackModel: Module {
    let shared: Tensor
    let layers: [Module]
    let a: [Tensor], b: [Tensor], bias: [Tensor]
    let head: Linear
    static let dim = 6, rank = 2, classes = 3

    init(depth: Int = 4) {
        let d = SharedStackModel.dim, r = SharedStackModel.rank
        shared = Module.newParameter([d, d])
        var layers: [Module] = [], a: [Tensor] = [], b: [Tensor] = [], bias: [Tensor] = []
        for _ in 0..<depth {
            let layer = Module()
            a.append(layer.parameter("private_a", [r, d], .normal(std: 0.5)))
            b.append(layer.parameter("private_b", [d, r], .normal(std: 0.5)))
            bias.append(layer.parameter("bias", [d], .uniform(bound: 0.1)))
            layers.append(layer)
        }
        self.layers = layers
        self.a = a
        self.b = b
        self.bias = bias
        head = Linear(d, SharedStackModel.classes)
        super.init()
        register("shared", shared, .normal(std: 0.4))
        let holder = child("layers", Module())
        for (i, l) in layers.enumerated() {
            holder.child("\(i)", l)
            l.registerShared("shared", shared)
        }
        child("head", head)
        // Optimizer state keys use tensor names: give every parameter its dotted path.
        for (name, t) in namedParameters() { t.name = name }
    }

    /// x `[B, D]` → logits `[B, classes]`.
    func callAsFunction(_ x: Tensor) -> Tensor {
        var h = x
        for l in 0..<layers.count {
            let mixed = h.matmul(shared, transposeOther: true) + h.matmul(a[l], transposeOther: true).matmul(b[l], transposeOther: true) + bias[l]
            h = h + mixed.tanh()
        }
        return head(h)
    }
}

/// The deterministic data set: `count` inputs `[D]` and labels.
struct ToyData {
    static let count = 48
    static let inputs: [Float] = RandomKey(seed: 99, purpose: "toy.inputs").uniforms(count * SharedStackModel.dim, low: -1.5, high: 1.5)
    static func labels(_ samples: [Int]) -> [Int32] { samples.map { Int32(($0 * 7 + 1) % SharedStackModel.classes) } }
    static func batch(_ samples: [Int]) -> Tensor {
        let d = SharedStackModel.dim
        var values: [Float] = []
        for s in samples { values += inputs[(s * d)..<((s + 1) * d)] }
        return Tensor(values, shape: [samples.count, d])
    }
}

/// What a training run reports (host copies, comparable across runs and processes).
struct RunResult {
    var firstGradients: [String: [Float]] = [:]
    var parameters: [String: [Float]] = [:]
    var norms: [Double] = []
    var losses: [Double] = []
    var optimizerStateKeys: [String] = []
    /// Names of the parameters the reducer marked as shared (final bucket).
    var sharedNames: [String] = []
}

struct RunOptions {
    var steps = 5
    var globalBatch = 12
    var zero = false
    var adamw = false
    var clip: Double? = nil
    var bucketCapBytes = 96
    var microBatches = 1
    var markShared = true
    var policy: GradientReducer.LaunchPolicy = .whenFinal
    var weightDecay = 0.01
    var overlap = true
    var backgroundProgress = true
}

/// One data-parallel training run, SPMD: the same code on every rank of `communicator`.
func trainRun(_ communicator: Communicator, _ options: RunOptions = RunOptions()) throws -> RunResult {
    let model = SharedStackModel()
    return try dataParallelRun(communicator, model: model, initialize: { model.initializeParameters(seed: $0) },
                               datasetSize: ToyData.count, learningRates: (adamw: 0.05, sgd: 0.5), options: options,
                               dryForward: { _ = model(ToyData.batch([0, 1])) }) { micro, _ in
        Tensor.crossEntropy(model(ToyData.batch(micro)), targets: ToyData.labels(micro),
                            reduction: .sumDividedBy(Float(options.globalBatch)))
    }
}

/// The data-parallel loop both test drivers share: start-up broadcast (every rank initialises differently on
/// purpose: the broadcast must fix it), shared weights found by `dryForward`, the bucketed reducer, `options.steps`
/// steps of SGD (or AdamW) with micro-batches, optional clipping and ZeRO-1. `loss(micro, firstSample)` is the loss
/// of one micro-batch (global sample indices, and the global index of its first sample).
func dataParallelRun(_ communicator: Communicator, model: Module, initialize: (UInt64) -> Void, datasetSize: Int,
                     learningRates: (adamw: Double, sgd: Double), options: RunOptions, dryForward: () -> Void,
                     loss: ([Int], Int) -> Tensor) throws -> RunResult {
    initialize(7 + UInt64(communicator.rank))
    let named = model.namedParameters()
    try ReplicaSynchronization.broadcastInitialState(named + model.namedBuffers(), communicator: communicator)
    let trainable = named.filter { $0.1.requiresGrad }
    let shared = options.markShared ? GradientReducer.parametersUsedMoreThanOnce(trainable.map(\.1), forward: dryForward) : []
    let reducer = GradientReducer(parameters: trainable, communicator: communicator, bucketCapBytes: options.bucketCapBytes,
                                  sharedParameters: shared, overlap: options.overlap,
                                  backgroundProgress: options.backgroundProgress)
    reducer.launchPolicy = options.policy
    let groups = [ParameterGroup(parameters: reducer.parameters)]
    let make: ([ParameterGroup]) -> Optimizer = { groups in
        options.adamw ? AdamW(groups: groups, learningRate: learningRates.adamw, weightDecay: options.weightDecay)
            : SGD(groups: groups, learningRate: learningRates.sgd, momentum: 0.9, weightDecay: options.weightDecay)
    }
    let sharded = options.zero ? ShardedOptimizer(parameters: reducer.parameters, groups: groups, communicator: communicator,
                                                  makeOptimizer: make) : nil
    let plain = options.zero ? nil : make(groups)
    let sampler = DistributedSampler(datasetSize: datasetSize, globalBatchSize: options.globalBatch, seed: 3)
    let slice = DistributedSampler.slice(count: options.globalBatch, rank: communicator.rank, worldSize: communicator.size)
    var result = RunResult()
    for step in 0..<options.steps {
        let (epoch, batch) = sampler.position(ofStep: step)
        let samples = Array(sampler.globalBatch(epoch: epoch, index: batch)[slice])
        reducer.zeroGradients()
        precondition(samples.count % options.microBatches == 0, "\(samples.count) samples per rank in \(options.microBatches) micro-batches")
        let per = samples.count / options.microBatches
        var localLoss = 0.0
        for m in 0..<options.microBatches {
            let micro = Array(samples[(m * per)..<((m + 1) * per)])
            let value = loss(micro, slice.lowerBound + m * per)
            reducer.beginBackward(synchronize: m == options.microBatches - 1)
            localLoss += Double(value.item())
            value.backward()
        }
        try reducer.finish()
        result.losses.append(try communicator.allReduceSum(localLoss))
        if step == 0 {
            for (i, p) in reducer.parameters.enumerated() { result.firstGradients[reducer.names[i]] = p.grad!.toArray() }
        }
        if let clip = options.clip { result.norms.append(reducer.clipGradientNorm(maxNorm: clip)) }
        if let sharded { try sharded.step(learningRate: sharded.localOptimizer.baseLearningRate) } else { plain!.step() }
    }
    for (name, p) in named { result.parameters[name] = p.toArray() }
    result.optimizerStateKeys = (sharded?.localOptimizer ?? plain!).stateDictionary().keys.sorted()
    result.sharedNames = reducer.names.enumerated().filter { reducer.isShared[$0.offset] }.map(\.element)
    return result
}

/// max|a − b| / max|a| over one tensor.
func relativeDifference(_ a: [Float], _ b: [Float]) -> Float {
    precondition(a.count == b.count)
    var diff: Float = 0, scale: Float = 0
    for i in a.indices { diff = max(diff, abs(a[i] - b[i])); scale = max(scale, abs(a[i])) }
    return scale == 0 ? diff : diff / scale
}

/// The largest per-tensor relative difference and its tensor's name.
func worstDifference(_ a: [String: [Float]], _ b: [String: [Float]]) -> (Float, String) {
    precondition(Set(a.keys) == Set(b.keys), "different tensors: \(a.keys.sorted()) vs \(b.keys.sorted())")
    var worst: (Float, String) = (0, "")
    for (name, values) in a {
        let d = relativeDifference(values, b[name]!)
        if d > worst.0 || d.isNaN { worst = (d, name) }
    }
    return worst
}

/// Exact equality of two results' tensors (bit patterns).
func bitwiseEqual(_ a: [String: [Float]], _ b: [String: [Float]]) -> Bool {
    a.keys.sorted() == b.keys.sorted() && a.allSatisfy { name, v in v.map(\.bitPattern) == b[name]!.map(\.bitPattern) }
}
