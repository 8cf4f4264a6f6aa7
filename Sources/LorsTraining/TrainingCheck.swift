import Foundation
import LorsConfig
import LorsData
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
        try communicator.prepare(parameters: model.trainableParameters)
        let order = EpochOrder.shuffled(count: trainData.dataset.count, seed: settings.seed, epoch: state.epoch)
        let start = state.iterationInEpoch * settings.batchSize
        let first = communicator.rank * localBatchSize
        let t0 = Date()
        let batch = trainData.assemble(Array(order[(start + first)..<(start + first + microBatchSize)]), epoch: state.epoch,
                                       step: state.step + 1, firstSample: first)
        let t1 = Date()
        let output = withoutGradients { model(batch.images, .inference) }
        let t2 = Date()
        let result = try runStep(globalBatch: order[start..<(start + settings.batchSize)], epoch: state.epoch)
        return TrainingCheckReport(inputShape: batch.images.shape, outputShape: output.shape, loss: result.loss,
                                   parameters: ParameterReport(model: model, type: modelType), buildSeconds: buildSeconds,
                                   batchSeconds: t1.timeIntervalSince(t0), forwardSeconds: t2.timeIntervalSince(t1),
                                   stepSeconds: result.seconds, memory: .current())
    }
}
