// The decoder of `RunSettings`: the one place that reads a validated `Config` by key path.

extension RunSettings {
    /// The settings of `config`, which must have been validated against `ConfigSchema.lors` (or an extension of it).
    /// Crashes if the schema and these structs disagree (a key missing, or an enum value without a case): that is a
    /// bug in lors, caught by LorsConfigTests, not a config mistake.
    public init(_ config: Config) {
        self = RunSettings.decode(config).settings
    }

    /// The settings of `config` and every key path the decoder read (for the test that every declared key is used).
    static func decode(_ config: Config) -> (settings: RunSettings, readKeys: Set<String>) {
        let r = SettingsReader(config)
        let settings = RunSettings(
            seed: UInt64(r.int(Key.seed)),
            model: .init(r), data: .init(r), train: .init(r), optimizer: .init(r), schedule: .init(r),
            eval: .init(r), log: .init(r), checkpoint: .init(r), dist: .init(r))
        return (settings, r.readKeys)
    }
}

extension RunSettings.Model {
    init(_ r: SettingsReader) {
        self.init(type: r.choice(Key.type), vit: .init(r), lors: .init(r), adamixer: .init(r))
    }
}

extension RunSettings.Model.ViT {
    init(_ r: SettingsReader) {
        self.init(imageSize: r.int(Key.imageSize), inChannels: r.int(Key.inChannels), patchSize: r.int(Key.patchSize),
                  numClasses: r.int(Key.numClasses), embedDim: r.int(Key.embedDim), depth: r.int(Key.depth),
                  numHeads: r.int(Key.numHeads), mlpRatio: r.double(Key.mlpRatio), qkvBias: r.bool(Key.qkvBias),
                  dropRate: r.double(Key.dropRate), attnDropRate: r.double(Key.attnDropRate),
                  dropPathRate: r.double(Key.dropPathRate), layerNormEps: r.double(Key.layerNormEps))
    }
}

extension RunSettings.Model.LORS {
    init(_ r: SettingsReader) {
        self.init(enabled: r.bool(Key.enabled), rank: r.int(Key.rank), attnGroups: r.intList(Key.attnGroups),
                  ffnGroups: r.intList(Key.ffnGroups), targets: r.choiceList(Key.targets))
    }
}

extension RunSettings.Model.AdaMixer {
    init(_ r: SettingsReader) {
        self.init(backbone: .init(r), numQueries: r.int(Key.numQueries),
                  numStages: r.int(Key.numStages), contentDim: r.int(Key.contentDim),
                  feedforwardChannels: r.int(Key.feedforwardChannels), numHeads: r.int(Key.numHeads),
                  samplingGroups: r.int(Key.samplingGroups), inPoints: r.int(Key.inPoints), outPoints: r.int(Key.outPoints),
                  numClasses: r.int(Key.numClasses), test: .init(r), lors: .init(r))
    }
}

extension RunSettings.Model.AdaMixer.Backbone {
    init(_ r: SettingsReader) {
        self.init(depth: r.int(Key.depth), width: r.int(Key.width), norm: r.choice(Key.norm), normGroups: r.int(Key.normGroups),
                  frozenStages: r.int(Key.frozenStages), pretrained: r.string(Key.pretrained))
    }
}

extension RunSettings.Model.AdaMixer.Test {
    init(_ r: SettingsReader) {
        self.init(maxPerImage: r.int(Key.maxPerImage))
    }
}

extension RunSettings.Model.AdaMixer.LORS {
    init(_ r: SettingsReader) {
        self.init(enabled: r.bool(Key.enabled), lorsaRank: r.int(Key.lorsaRank), lorsaGroups: r.intList(Key.lorsaGroups),
                  lorstRank: r.int(Key.lorstRank), lorstGroups: r.intList(Key.lorstGroups), sharedInit: r.choice(Key.sharedInit))
    }
}

extension RunSettings.Data {
    init(_ r: SettingsReader) {
        self.init(dataset: r.choice(Key.dataset), root: r.string(Key.root), mean: r.doubleList(Key.mean),
                  std: r.doubleList(Key.std), maxTrainSamples: r.int(Key.maxTrainSamples),
                  maxTestSamples: r.int(Key.maxTestSamples), augmentation: .init(r), numWorkers: r.int(Key.numWorkers),
                  pipeline: r.choice(Key.pipeline), imgScale: r.intList(Key.imgScale), trainImages: r.string(Key.trainImages),
                  trainAnnotations: r.string(Key.trainAnnotations), valImages: r.string(Key.valImages),
                  valAnnotations: r.string(Key.valAnnotations), filterEmptyGT: r.bool(Key.filterEmptyGT),
                  skipBadImages: r.bool(Key.skipBadImages))
    }
}

extension RunSettings.Data.Augmentation {
    init(_ r: SettingsReader) {
        self.init(randomFlip: r.bool(Key.randomFlip), randomCropPadding: r.int(Key.randomCropPadding),
                  mixupAlpha: r.double(Key.mixupAlpha), cutmixAlpha: r.double(Key.cutmixAlpha), mixProb: r.double(Key.mixProb),
                  switchProb: r.double(Key.switchProb), labelSmoothing: r.double(Key.labelSmoothing))
    }
}

extension RunSettings.Train {
    init(_ r: SettingsReader) {
        self.init(batchSize: r.int(Key.batchSize), epochs: r.int(Key.epochs), maxSteps: r.optionalInt(Key.maxSteps),
                  gradClip: r.optionalDouble(Key.gradClip), logInterval: r.int(Key.logInterval),
                  accumulationSteps: r.int(Key.accumulationSteps), threads: r.int(Key.threads),
                  nonfinite: r.choice(Key.nonfinite), maxNonfiniteSteps: r.int(Key.maxNonfiniteSteps))
    }
}

extension RunSettings.Optimizer {
    init(_ r: SettingsReader) {
        let betas = r.doubleList(Key.betas)
        precondition(betas.count == 2, ConfigBug.badSchema(Key.betas, "the decoder expects exactly 2 values"))
        self.init(type: r.choice(Key.type), lr: r.double(Key.lr), weightDecay: r.double(Key.weightDecay), beta1: betas[0],
                  beta2: betas[1], eps: r.double(Key.eps), momentum: r.double(Key.momentum), nesterov: r.bool(Key.nesterov),
                  noDecayOn: r.choiceList(Key.noDecayOn))
    }
}

extension RunSettings.Schedule {
    init(_ r: SettingsReader) {
        self.init(policy: r.choice(Key.policy), milestones: r.intList(Key.milestones), gamma: r.double(Key.gamma),
                  warmupIters: r.int(Key.warmupIters), warmupRatio: r.double(Key.warmupRatio),
                  warmupEpochs: r.int(Key.warmupEpochs), minLRRatio: r.double(Key.minLRRatio), cosineBy: r.choice(Key.cosineBy))
    }
}

extension RunSettings.Eval {
    init(_ r: SettingsReader) {
        self.init(intervalEpochs: r.int(Key.intervalEpochs), testBatchSize: r.int(Key.testBatchSize))
    }
}

extension RunSettings.Log {
    init(_ r: SettingsReader) {
        self.init(tensorboard: r.bool(Key.tensorboard), console: r.bool(Key.console), level: r.choice(Key.level))
    }
}

extension RunSettings.Checkpoint {
    init(_ r: SettingsReader) {
        self.init(intervalSteps: r.int(Key.intervalSteps), keepLast: r.int(Key.keepLast))
    }
}

extension RunSettings.Dist {
    init(_ r: SettingsReader) {
        self.init(bucketCapMB: r.double(Key.bucketCapMB), zero1: r.bool(Key.zero1), overlap: r.bool(Key.overlap))
    }
}

/// `Config`'s typed accessors, recording every key path read.
final class SettingsReader {
    let config: Config
    private(set) var readKeys: Set<String> = []

    init(_ config: Config) { self.config = config }

    private func read(_ path: String) -> String {
        readKeys.insert(path)
        return path
    }

    func int(_ path: String) -> Int { config.int(read(path)) }
    func optionalInt(_ path: String) -> Int? { config.optionalInt(read(path)) }
    func double(_ path: String) -> Double { config.double(read(path)) }
    func optionalDouble(_ path: String) -> Double? { config.optionalDouble(read(path)) }
    func bool(_ path: String) -> Bool { config.bool(read(path)) }
    func string(_ path: String) -> String { config.string(read(path)) }
    func intList(_ path: String) -> [Int] { config.intList(read(path)) }
    func doubleList(_ path: String) -> [Double] { config.doubleList(read(path)) }

    /// The enum case of the value at `path`; crashes if `Choice` has no case for it.
    func choice<Choice: RawRepresentable>(_ path: String) -> Choice where Choice.RawValue == String {
        Self.choice(config.string(read(path)), at: path)
    }

    /// The enum cases of the list at `path`; crashes if `Choice` lacks a case for one of them.
    func choiceList<Choice: RawRepresentable>(_ path: String) -> [Choice] where Choice.RawValue == String {
        config.stringList(read(path)).map { Self.choice($0, at: path) }
    }

    private static func choice<Choice: RawRepresentable>(_ raw: String, at path: String) -> Choice
        where Choice.RawValue == String {
        guard let value = Choice(rawValue: raw) else {
            preconditionFailure(ConfigBug.badSchema(path, "the schema allows '\(raw)' but \(Choice.self) has no such case"))
        }
        return value
    }
}
