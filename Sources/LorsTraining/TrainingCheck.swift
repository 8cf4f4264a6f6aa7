import Foundation
import LorsConfig
import LorsNN
import LorsTensor

/// `lors train --check`: builds everything, loads one batch, runs one training step and reports
/// shapes, parameters, memory and timing (nothing is saved).
public struct TrainingCheckReport: Sendable {
    public var inputShape: [Int]
    public var outputShape: [Int]
    public var loss: Double
    public var parameters: ParameterReport
    public var buildSeconds: Double
    public var batchSeconds: Double
    public var forwardSeconds: Double
    public var stepSeconds: Double
    public var memory: MemoryReport

    public var text: String {
        var lines = [
            "check: input \(inputShape) (this rank's micro-batch) -> output \(outputShape); loss after one step \(String(format: "%.4f", loss))",
            "check: parameters \(parameters.total) total, \(parameters.trainable) trainable",
        ]
        for name in parameters.componentNames { lines.append("check:   \(name): \(parameters.components[name] ?? 0)") }
        lines.append("check: memory \(memory.text)")
        lines.append("check: time build \(String(format: "%.3f", buildSeconds))s, one batch \(String(format: "%.3f", batchSeconds))s, "
            + "forward \(String(format: "%.3f", forwardSeconds))s, one training step (forward+backward+update) "
            + "\(String(format: "%.3f", stepSeconds))s")
        lines.append("check: OK")
        return lines.joined(separator: "\n")
    }
}

extension Trainer {
    /// Loads this rank's first micro-batch, forwards it once without gradients (shapes, forward time),
    /// then runs the first training step with the hooks (LR), and reports. `buildSeconds`: time spent
    /// building the run before this call, reported as given.
    public func check(modelType: RunSettings.Model.Kind, buildSeconds: Double) throws -> TrainingCheckReport {
        try parallel.prepare(parameters: model.trainableParameters)
        let global = globalBatch(epoch: state.epoch, index: state.iterationInEpoch)
        let first = microBatches(globalBatch: global, epoch: state.epoch, step: state.step + 1)[0]
        let inspection = try withoutGradients { try task.inspect(first) }
        let result = try runStep(globalBatch: global, epoch: state.epoch)
        return TrainingCheckReport(inputShape: inspection.inputShape, outputShape: inspection.outputShape, loss: result.loss,
                                   parameters: ParameterReport(model: model, type: modelType), buildSeconds: buildSeconds,
                                   batchSeconds: inspection.assembleSeconds, forwardSeconds: inspection.forwardSeconds,
                                   stepSeconds: result.seconds, memory: .current())
    }
}
