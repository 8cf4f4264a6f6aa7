import Foundation
import LorsCheckpoint
import LorsModels
import LorsNN
import LorsOptim
import LorsTensor
import LorsTestSupport
import XCTest

/// A small ViT (2 blocks, width 16) with an AdamW that has taken `steps` steps on fixed pseudo-random gradients.
func makeTrainedModel(seed: UInt64 = 7, embedDim: Int = 16, steps: Int = 2) -> (VisionTransformer, AdamW) {
    var config = ViTConfiguration()
    config.imageSize = 8
    config.patchSize = 4
    config.inChannels = 3
    config.numClasses = 5
    config.embedDim = embedDim
    config.depth = 2
    config.numHeads = 2
    let model = VisionTransformer(config)
    model.initializeParameters(seed: seed)
    assignDottedParameterNames(model)
    let optimizer = AdamW(parameters: model.parameters, learningRate: 1e-3, weightDecay: 0.05)
    for step in 0..<steps {
        for (name, p) in model.namedParameters() {
            p.grad = Tensor(RandomKey(seed: seed, purpose: "grad.\(step).\(name)").uniforms(p.count, low: -1, high: 1), shape: p.shape)
        }
        optimizer.step()
    }
    return (model, optimizer)
}

func makeMetadata(step: Int, metric: Double? = nil, config: String = "train:\n  max_steps: 10\nmodel:\n  depth: 2\n") -> CheckpointMetadata {
    CheckpointMetadata(step: step, epoch: step / 3, batchInEpoch: step % 3, worldSize: 1, seed: 0xDEAD_BEEF_0000_0001, config: config,
                       baseLearningRate: 1e-3, currentLearningRate: 5e-4, evalMetric: metric, extra: ["sampler": "v1"])
}

/// Saves model + optimizer as step `step` into `directory`.
@discardableResult
func saveCheckpoint(_ directory: CheckpointDirectory, step: Int, model: Module, optimizer: AdamW, metric: Double? = nil,
                    keepLast: Int? = nil, faultInjection: FaultInjection? = nil) throws -> CheckpointCommit {
    try directory.save(metadata: makeMetadata(step: step, metric: metric), optimizer: OptimizerMetadata(describing: optimizer),
                       keepLast: keepLast, faultInjection: faultInjection) { writer in
        writer.addModel(model)
        writer.addOptimizerState(optimizer, model: model)
    }
}

func temporaryDirectory(_ name: String = #function) throws -> String {
    let cleaned = name.filter { $0.isLetter || $0.isNumber }
    let path = (NSTemporaryDirectory() as NSString).appendingPathComponent("lors-ckpt-\(cleaned)-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

/// Bit patterns, so comparisons are bitwise (NaN-safe, -0 vs 0 distinguished).
func bits(_ tensor: Tensor) -> [UInt32] { tensor.toArray().map(\.bitPattern) }

/// What `flipByte` throws when the bytes to damage are not in the file. Thrown out of a test method, XCTest records it
/// as a failure with this description.
struct DatasetBytesNotFound: Error, CustomStringConvertible {
    let path: String
    let valueCount: Int
    let file: StaticString
    let line: UInt
    var description: String {
        "\(file):\(line): no byte was damaged: the raw bytes of the \(valueCount) given float32 value(s) do not occur in \(path)"
    }
}

/// Flips one byte of `path` inside the first occurrence of `values`' raw bytes (some dataset values); throws
/// `DatasetBytesNotFound` (which fails the test) when they do not occur in the file.
func flipByte(in path: String, matching values: [Float], file: StaticString = #filePath, line: UInt = #line) throws {
    var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
    let pattern = values.withUnsafeBytes { [UInt8]($0) }
    guard !pattern.isEmpty, bytes.count >= pattern.count,
          let start = (0...(bytes.count - pattern.count)).first(where: { bytes[$0..<($0 + pattern.count)].elementsEqual(pattern) }) else {
        throw DatasetBytesNotFound(path: path, valueCount: values.count, file: file, line: line)
    }
    bytes[start + pattern.count / 2] ^= 0x5A
    try Data(bytes).write(to: URL(fileURLWithPath: path))
}

func truncate(_ path: String, keepingFraction fraction: Double) throws {
    let size = try FileManager.default.attributesOfItem(atPath: path)[.size] as! Int
    let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
    try handle.truncate(atOffset: UInt64(Double(size) * fraction))
    try handle.close()
}

/// Asserts `body` throws a `CheckpointError` and returns it.
func checkpointError(_ body: () throws -> Void, file: StaticString = #filePath, line: UInt = #line) -> CheckpointError? {
    do {
        try body()
        XCTFail("expected a CheckpointError", file: file, line: line)
    } catch let error as CheckpointError {
        return error
    } catch {
        XCTFail("expected a CheckpointError, got \(type(of: error)): \(error)", file: file, line: line)
    }
    return nil
}
