import Foundation
import LorsNative
import LorsOptim

/// Names and versions of the on-disk layout (docs/checkpoints.md, "Files").
///
///     /model/<dotted.parameter.name>          float32, full logical shape, attribute crc32
///     /buffers/<dotted.buffer.name>           float32, full logical shape, attribute crc32
///     /optimizer/<dotted.parameter.name>/<state>   exp_avg, exp_avg_sq, step, momentum_buffer, ...
///     /optimizer/step                         0-d, the optimizer's step count
///     /optimizer   attributes: type, lr, beta1, beta2, eps, weight_decay, momentum, global_step
///     /meta        attributes: format_version, lors_version, step, epoch, batch_in_epoch, world_size, seed, config,
///                  base_lr, current_lr, created, [eval_metric], extra (JSON), datasets (manifest), complete
public enum CheckpointLayout {
    /// Version of the layout this code writes and the newest it reads.
    public static let formatVersion = 1
    /// The LORS version recorded in new checkpoints.
    public static let lorsVersion = "0.1.0"
    /// Group of model parameters.
    public static let modelGroup = "/model"
    /// Group of model buffers.
    public static let buffersGroup = "/buffers"
    /// Group of optimizer state.
    public static let optimizerGroup = "/optimizer"
    /// Group holding the run's metadata as attributes.
    public static let metaGroup = "/meta"
    /// Name of the per-dataset checksum attribute (CRC-32 of the little-endian float32 bytes, row-major, as int64).
    public static let checksumAttribute = "crc32"
    /// Description of the checksum stored in `/meta` attribute `checksum_algorithm`.
    public static let checksumAlgorithm = "crc32 (zlib polynomial) of the little-endian float32 bytes in row-major order"

    /// `/model/<name>`.
    public static func modelPath(_ name: String) -> String { modelGroup + "/" + name }
    /// `/buffers/<name>`.
    public static func bufferPath(_ name: String) -> String { buffersGroup + "/" + name }
    /// `/optimizer/<parameter>/<state>` (`state` e.g. `exp_avg`), or `/optimizer/step` for the global step.
    public static func optimizerPath(parameter: String?, state: String) -> String {
        guard let parameter else { return optimizerGroup + "/" + state }
        return optimizerGroup + "/" + parameter + "/" + state
    }
}

/// The run state stored as attributes of `/meta`.
public struct CheckpointMetadata: Equatable, Sendable {
    /// Layout version (`CheckpointLayout.formatVersion` when written by this code).
    public var formatVersion: Int
    /// LORS version that wrote the file.
    public var lorsVersion: String
    /// Optimizer steps completed (steps count from 1 and continue across resumes).
    public var step: Int
    /// Epoch (0-based) the next step belongs to.
    public var epoch: Int
    /// Position inside the epoch: batches of `epoch` already consumed.
    public var batchInEpoch: Int
    /// Number of ranks that wrote the checkpoint.
    public var worldSize: Int
    /// The run's seed (stored as the int64 with the same bits).
    public var seed: UInt64
    /// The resolved config as YAML.
    public var config: String
    /// The schedule's base learning rate.
    public var baseLearningRate: Double
    /// The learning rate of the last step.
    public var currentLearningRate: Double
    /// Creation time, ISO 8601 (UTC).
    public var created: String
    /// The evaluation metric of this checkpoint, if an evaluation ran (used to maintain `best`).
    public var evalMetric: Double?
    /// Free-form extra state (stored as one JSON attribute `extra`, keys sorted).
    public var extra: [String: String]

    public init(step: Int, epoch: Int, batchInEpoch: Int = 0, worldSize: Int = 1, seed: UInt64 = 0, config: String = "",
                baseLearningRate: Double = 0, currentLearningRate: Double = 0, evalMetric: Double? = nil,
                extra: [String: String] = [:], created: Date = Date(),
                formatVersion: Int = CheckpointLayout.formatVersion, lorsVersion: String = CheckpointLayout.lorsVersion) {
        self.formatVersion = formatVersion
        self.lorsVersion = lorsVersion
        self.step = step
        self.epoch = epoch
        self.batchInEpoch = batchInEpoch
        self.worldSize = worldSize
        self.seed = seed
        self.config = config
        self.baseLearningRate = baseLearningRate
        self.currentLearningRate = currentLearningRate
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        self.created = formatter.string(from: created)
        self.evalMetric = evalMetric
        self.extra = extra
    }

    /// The attributes written on `/meta` (without the manifest and completion marker).
    var attributes: [(String, HDF5AttributeValue)] {
        var out: [(String, HDF5AttributeValue)] = [
            ("format_version", .int64(Int64(formatVersion))),
            ("lors_version", .string(lorsVersion)),
            ("step", .int64(Int64(step))),
            ("epoch", .int64(Int64(epoch))),
            ("batch_in_epoch", .int64(Int64(batchInEpoch))),
            ("world_size", .int64(Int64(worldSize))),
            ("seed", .int64(Int64(bitPattern: seed))),
            ("config", .string(config)),
            ("base_lr", .double(baseLearningRate)),
            ("current_lr", .double(currentLearningRate)),
            ("created", .string(created)),
        ]
        if let evalMetric { out.append(("eval_metric", .double(evalMetric))) }
        out.append(("extra", .string(JSONObject(sortingKeysOf: extra.mapValues(JSONValue.string)).text())))
        return out
    }

    /// Reads the attributes of `/meta`.
    static func read(from file: HDF5File) throws -> CheckpointMetadata {
        let meta = CheckpointLayout.metaGroup
        var result = CheckpointMetadata(step: Int(try file.int64Attribute("step", of: meta)),
                                        epoch: Int(try file.int64Attribute("epoch", of: meta)))
        result.formatVersion = Int(try file.int64Attribute("format_version", of: meta))
        result.lorsVersion = try file.stringAttribute("lors_version", of: meta)
        result.batchInEpoch = Int(try file.int64Attribute("batch_in_epoch", of: meta))
        result.worldSize = Int(try file.int64Attribute("world_size", of: meta))
        result.seed = UInt64(bitPattern: try file.int64Attribute("seed", of: meta))
        result.config = try file.stringAttribute("config", of: meta)
        result.baseLearningRate = try file.doubleAttribute("base_lr", of: meta)
        result.currentLearningRate = try file.doubleAttribute("current_lr", of: meta)
        result.created = try file.stringAttribute("created", of: meta)
        result.evalMetric = try file.hasAttribute("eval_metric", on: meta) ? try file.doubleAttribute("eval_metric", of: meta) : nil
        if try file.hasAttribute("extra", on: meta),
           let object = try? JSONSerialization.jsonObject(with: Data(try file.stringAttribute("extra", of: meta).utf8)),
           let dictionary = object as? [String: String] {
            result.extra = dictionary
        } else {
            result.extra = [:]
        }
        return result
    }
}

/// The optimizer's hyper-parameters, stored as attributes of `/optimizer`.
public struct OptimizerMetadata: Equatable, Sendable {
    /// `adamw` or `sgd` (or another name a caller chooses).
    public var type: String
    /// The optimizer's base learning rate (`optimizer.lr`).
    public var learningRate: Double
    /// AdamW's (β1, β2); nil for SGD.
    public var betas: (Double, Double)? {
        get { beta1.flatMap { b1 in beta2.map { (b1, $0) } } }
        set { beta1 = newValue?.0; beta2 = newValue?.1 }
    }
    /// AdamW's β1.
    public var beta1: Double?
    /// AdamW's β2.
    public var beta2: Double?
    /// AdamW's ε.
    public var epsilon: Double?
    /// Default weight decay.
    public var weightDecay: Double
    /// SGD's momentum.
    public var momentum: Double?
    /// Number of optimizer steps taken.
    public var globalStep: Int

    public init(type: String, learningRate: Double, beta1: Double? = nil, beta2: Double? = nil, epsilon: Double? = nil,
                weightDecay: Double, momentum: Double? = nil, globalStep: Int) {
        self.type = type
        self.learningRate = learningRate
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
        self.weightDecay = weightDecay
        self.momentum = momentum
        self.globalStep = globalStep
    }

    /// Describes an `AdamW` or `SGD` (other optimizers: type `unknown` with the base rate and step count).
    public init(describing optimizer: Optimizer) {
        if let adamw = optimizer as? AdamW {
            self.init(type: "adamw", learningRate: adamw.baseLearningRate, beta1: adamw.beta1, beta2: adamw.beta2,
                      epsilon: adamw.epsilon, weightDecay: adamw.weightDecay, globalStep: adamw.stepCount)
        } else if let sgd = optimizer as? SGD {
            self.init(type: "sgd", learningRate: sgd.baseLearningRate, weightDecay: sgd.weightDecay, momentum: sgd.momentum,
                      globalStep: sgd.stepCount)
        } else {
            self.init(type: "unknown", learningRate: optimizer.baseLearningRate, weightDecay: 0, globalStep: optimizer.stepCount)
        }
    }

    var attributes: [(String, HDF5AttributeValue)] {
        var out: [(String, HDF5AttributeValue)] = [("type", .string(type)), ("lr", .double(learningRate)),
                                                   ("weight_decay", .double(weightDecay)), ("global_step", .int64(Int64(globalStep)))]
        if let beta1 { out.append(("beta1", .double(beta1))) }
        if let beta2 { out.append(("beta2", .double(beta2))) }
        if let epsilon { out.append(("eps", .double(epsilon))) }
        if let momentum { out.append(("momentum", .double(momentum))) }
        return out
    }

    static func read(from file: HDF5File) throws -> OptimizerMetadata? {
        let group = CheckpointLayout.optimizerGroup
        guard try file.exists(group), try file.hasAttribute("type", on: group) else { return nil }
        func optional(_ name: String) throws -> Double? {
            try file.hasAttribute(name, on: group) ? try file.doubleAttribute(name, of: group) : nil
        }
        return OptimizerMetadata(type: try file.stringAttribute("type", of: group), learningRate: try file.doubleAttribute("lr", of: group),
                                 beta1: try optional("beta1"), beta2: try optional("beta2"), epsilon: try optional("eps"),
                                 weightDecay: try file.doubleAttribute("weight_decay", of: group), momentum: try optional("momentum"),
                                 globalStep: Int(try file.int64Attribute("global_step", of: group)))
    }
}
