import ArgumentParser
import Foundation
import LorsModels
import LorsNative
import LorsNN
import LorsOptim
import LorsTensor
import LorsTraining

/// `lors-bench step --model adamixer-…`: one training step of the AdaMixer detector as `lors train` runs it (forward
/// of backbone, neck and the 6-stage decoder; per-stage matching and loss through `AdaMixerCriterion`; backward;
/// AdamW), on fixed random images with fixed ground truth (3 boxes per image).
final class DetectorRunner: StepRunner {
    static let names = ["adamixer-tiny", "adamixer-tiny-lors", "adamixer-r50", "adamixer-r50-lors"]

    let name: String
    let detector: AdaMixerDetector
    let optimizer: AdamW
    let images: Tensor
    let sizes: [(height: Int, width: Int)]
    let boxes: [[Float]]
    let labels: [[Int32]]
    let criterion = AdaMixerCriterion()
    var times: [Double] = []

    /// The small CPU detector (`configs/fmnist_det_adamixer*.yaml`'s model): ResNet-18 at width 32 with GroupNorm
    /// (8 groups), decoder width 64, FFN 256, 8 heads, 30 queries, 6 stages, 10 classes; vanilla G 4 × P_in 16, P_out 64; LORS G 2 ×
    /// P_in 32 with LORSA rank 4 (groups 1,1,2,2,3,3) and LORST rank 2.
    static func tiny(lors: Bool) -> AdaMixerConfiguration {
        var c = AdaMixerConfiguration()
        c.backboneDepth = 18
        c.backboneWidth = 32
        c.backboneNorm = .groupNorm(groups: 8)
        c.frozenStages = -1
        c.numQueries = 30
        c.contentDim = 64
        c.feedforwardChannels = 256
        c.numHeads = 8
        c.samplingGroups = 4
        c.inPoints = 16
        c.outPoints = 64
        c.numClasses = 10
        if lors {
            c.samplingGroups = 2
            c.inPoints = 32
            var l = AdaMixerLORSConfiguration()
            l.lorsaRank = 4
            l.lorstRank = 2
            c.lors = l
        }
        return c
    }

    static func configuration(_ name: String) -> AdaMixerConfiguration? {
        switch name {
        case "adamixer-tiny": return tiny(lors: false)
        case "adamixer-tiny-lors": return tiny(lors: true)
        case "adamixer-r50": return .r50
        case "adamixer-r50-lors": return .r50LORS
        default: return nil
        }
    }

    init(name: String, batch: Int?, size: String?) throws {
        guard let config = Self.configuration(name) else {
            throw ValidationError("unknown detector '\(name)'; known: \(Self.names.joined(separator: ", "))")
        }
        let tiny = name.hasPrefix("adamixer-tiny")
        let count = batch ?? (tiny ? 16 : 2)
        let text = size ?? (tiny ? "256x256" : "1333x800")
        let parts = text.split(separator: "x").compactMap { Int($0) }
        guard parts.count == 2, parts.allSatisfy({ $0 >= 32 }), count > 0 else {
            throw ValidationError("--size must be WxH with sides of at least 32 and --batch positive, got '\(text)' and \(count)")
        }
        let (width, height) = (parts[0], parts[1])
        self.name = name
        detector = AdaMixerDetector(config)
        detector.initializeParameters(seed: 0)
        optimizer = AdamW(parameters: detector.trainableParameters, learningRate: 1e-4, weightDecay: 1e-4)
        // Inputs padded to a multiple of 32, as the detection batches are.
        let (padW, padH) = ((width + 31) / 32 * 32, (height + 31) / 32 * 32)
        images = Tensor(RandomKey(seed: 1, purpose: "bench.det.images").uniforms(count * 3 * padH * padW, low: -2, high: 2),
                        shape: [count, 3, padH, padW])
        sizes = Array(repeating: (height, width), count: count)
        let key = RandomKey(seed: 2, purpose: "bench.det.targets")
        var boxes: [[Float]] = [], labels: [[Int32]] = []
        for j in 0..<count {
            var b: [Float] = [], l: [Int32] = []
            for k in 0..<3 {
                let at = (j * 3 + k) * 5
                let w = Float(width) * (0.1 + 0.3 * key.uniform(at: at)), h = Float(height) * (0.1 + 0.3 * key.uniform(at: at + 1))
                let x = (Float(width) - w) * key.uniform(at: at + 2), y = (Float(height) - h) * key.uniform(at: at + 3)
                b += [x, y, x + w, y + h]
                l.append(Int32(key.integer(below: config.numClasses, at: at + 4)))
            }
            boxes.append(b)
            labels.append(l)
        }
        self.boxes = boxes
        self.labels = labels
    }

    var batch: Int { images.shape[0] }
    var parameterCount: Int { detector.parameterCount }
    var flopPerStep: Double? { nil }
    var details: JSONObject {
        ["input": .string("\(images.shape[3])x\(images.shape[2])"),
         "decoder_parameters": .int(detector.decoder.parameterCount + detector.query.parameterCount)]
    }

    func step(_ i: Int, profiler: OpProfiler?) throws -> Double {
        let started = Date()
        profiler?.begin()
        let outputs = detector(images, imageSizes: sizes)
        let matched = labels.reduce(0) { $0 + AdaMixerCriterion.matchedQueries(boxes: $1.count, queries: detector.config.numQueries) }
        let loss = try criterion(outputs, boxes: boxes, labels: labels, validSizes: sizes, normaliser: Float(max(matched, 1))) { j, stage in
            "bench image \(j), stage \(stage)"
        }
        profiler?.mark("loss (matching, focal, L1, GIoU)")
        loss.total.backward()
        profiler?.mark("backward (accumulation, hooks)")
        optimizer.step(learningRate: 1e-4)
        optimizer.zeroGrad()
        profiler?.mark("optimizer (AdamW, zero_grad)")
        return Date().timeIntervalSince(started)
    }
}
