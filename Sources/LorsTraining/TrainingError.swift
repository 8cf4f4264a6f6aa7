/// Errors that stop a training run; each names the keys, numbers or file involved.
public enum TrainingError: Error, CustomStringConvertible, Equatable {
    /// The global batch does not split evenly over ranks × accumulation steps.
    case batchNotDivisible(batchSize: Int, ranks: Int, accumulationSteps: Int)
    /// Fewer training samples than one global batch.
    case datasetTooSmall(dataset: String, samples: Int, batchSize: Int)
    /// Model and data disagree (`key` is the model key, `detail` the two values).
    case modelDataMismatch(key: String, detail: String)
    /// A `data.dataset` that `lors train`, `lors-worker` and `lors eval` cannot train model `model` (`model.type`) on;
    /// `supported` lists the datasets they can.
    case unsupported(key: String, value: String, supported: [String], model: String)
    /// `operation` rebuilds a ViT, and the checkpoint's `model.type` is `model`.
    case viTOnly(operation: String, model: String)
    /// The loss became NaN or infinite.
    case nonFiniteLoss(step: Int, loss: Double)
    /// NaN/Inf in the loss or gradients that stops the run (`train.nonfinite`, `--debug`).
    case nonFinite(step: Int, detail: String)
    /// A work-dir file could not be written.
    case cannotWrite(path: String, detail: String)

    public var description: String {
        switch self {
        case let .batchNotDivisible(batch, ranks, accumulation):
            return "train.batch_size \(batch) is not divisible by \(ranks) rank(s) × train.accumulation_steps \(accumulation) "
                + "(each rank processes batch_size / ranks samples per step, in accumulation_steps micro-batches)"
        case let .datasetTooSmall(dataset, samples, batch):
            return "dataset \(dataset) has \(samples) training samples, fewer than train.batch_size \(batch)"
        case let .modelDataMismatch(key, detail):
            return "\(key) does not match the data: \(detail)"
        case let .unsupported(key, value, supported, model):
            return "\(key): '\(value)' cannot be trained or evaluated with model.type \(model): lors train, lors-worker and "
                + "lors eval train \(model) on \(key) \(supported.joined(separator: ", "))"
        case let .viTOnly(operation, model):
            return "model.type \(model): \(operation) rebuilds a ViT (model.type vit); export the stored /model tensors without "
                + "--merge-lors and --reference-logits instead"
        case let .nonFiniteLoss(step, loss):
            return "loss became \(loss) at step \(step); lower optimizer.lr or set train.grad_clip"
        case let .nonFinite(step, detail):
            return "non-finite values at step \(step): \(detail)"
        case let .cannotWrite(path, detail):
            return "cannot write \(path): \(detail)"
        }
    }
}
