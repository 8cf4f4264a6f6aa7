import Foundation
import LorsData
import LorsModels
import LorsNN
import LorsTensor

/// A classifier the classification task can train: images `[B, C, H, W]` → logits `[B, classes]`.
public protocol ImageClassifier: Module {
    func callAsFunction(_ images: Tensor, _ context: ForwardContext) -> Tensor
}

extension VisionTransformer: ImageClassifier {}

/// Image classification (ViT/DeiT on Fashion-MNIST, CIFAR-100, synthetic data): cross-entropy with label
/// smoothing (soft targets under Mixup/CutMix) divided by the GLOBAL batch size; evaluation reports top-1, top-5
/// and the mean cross-entropy, and top-1 picks the best checkpoint.
public final class ClassificationTask: TrainingTask {
    public let classifier: any ImageClassifier
    public let trainData: BatchAssembler
    public let testData: BatchAssembler
    public let labelSmoothing: Float

    public init(model: any ImageClassifier, trainData: BatchAssembler, testData: BatchAssembler, labelSmoothing: Float = 0) {
        self.classifier = model
        self.trainData = trainData
        self.testData = testData
        self.labelSmoothing = labelSmoothing
    }

    public var model: Module { classifier }
    public var trainingSampleCount: Int { trainData.dataset.count }
    public var dataDescription: String {
        "\(trainData.dataset.name) \(trainData.dataset.count) samples, \(testData.dataset.name) \(testData.dataset.count) samples"
    }

    public func loss(_ slice: BatchSlice, statistics: [Double], context: ForwardContext) throws -> Tensor {
        let batch = trainData.assemble(globalBatch: slice.globalBatch, positions: slice.positions, epoch: slice.epoch, step: slice.step)
        let logits = classifier(batch.images, context)
        let reduction = LossReduction.sumDividedBy(Float(slice.globalBatch.count))
        if let soft = batch.softTargets {
            return Tensor.crossEntropy(logits, softTargets: soft, labelSmoothing: labelSmoothing, reduction: reduction)
        }
        return Tensor.crossEntropy(logits, targets: batch.labels, labelSmoothing: labelSmoothing, reduction: reduction)
    }

    public func inspect(_ slice: BatchSlice) throws -> ForwardInspection {
        let t0 = Date()
        let batch = trainData.assemble(globalBatch: slice.globalBatch, positions: slice.positions, epoch: slice.epoch, step: slice.step)
        let t1 = Date()
        let output = classifier(batch.images, .inference)
        return ForwardInspection(inputShape: batch.images.shape, outputShape: output.shape, assembleSeconds: t1.timeIntervalSince(t0),
                                 forwardSeconds: Date().timeIntervalSince(t1))
    }

    /// Each rank evaluates its contiguous share (`DistributedSampler.evaluationRange`) of every global evaluation
    /// batch; the counts and the loss sum are summed over ranks, so the accuracy is exact for any world size.
    public func evaluate(_ context: EvaluationContext) throws -> Metrics {
        let data = testData.dataset
        var accuracy = TopKAccuracy()
        var lossSum = 0.0
        for batch in DistributedSampler.evaluationBatches(count: data.count, batchSize: context.batchSize) {
            try context.checkStop()
            let share = DistributedSampler.evaluationRange(datasetSize: batch.count, rank: context.communicator.rank,
                                                           worldSize: context.communicator.size)
            guard !share.isEmpty else { continue }
            let assembled = testData.assemble(Array((batch.lowerBound + share.lowerBound)..<(batch.lowerBound + share.upperBound)), epoch: 0)
            let (logits, loss) = withoutGradients { () -> ([Float], Float) in
                let out = classifier(assembled.images, .inference)
                return (out.toArray(), Tensor.crossEntropy(out, targets: assembled.labels, reduction: .sum).item())
            }
            accuracy.update(logits: logits, classes: data.classes, labels: assembled.labels)
            lossSum += Double(loss)
        }
        let sums = try context.communicator.allReduceSum([Double(accuracy.total), Double(accuracy.correctTop1), Double(accuracy.correctTop5), lossSum])
        let merged = TopKAccuracy(total: Int(sums[0]), correctTop1: Int(sums[1]), correctTop5: Int(sums[2]))
        return Metrics([Metric("top1", merged.top1, display: .percent), Metric("top5", merged.top5, display: .percent),
                        Metric("loss", sums[3] / max(1, sums[0]))], samples: merged.total, primary: "top1")
    }
}
