import Foundation
import LorsData
import LorsDetection
import LorsDistributed
import LorsModels
import LorsNN
import LorsTensor

/// AdaMixer detection (COCO-format sets): the set-prediction loss of every decoder stage and COCO box AP.
///
/// Training, per micro-batch: the detector runs on the assembled images (padded to the global batch's size, so a
/// sample's input does not depend on the split); for every stage, every image's queries are matched one-to-one to its
/// ground-truth boxes on that stage's detached predictions (`HungarianMatchingCost.adaMixer`, `LinearAssignment`), and
/// the stage's loss (`DetectionLoss`: focal loss over all queries × classes, L1 on boxes normalised by the image's
/// valid size, GIoU on absolute boxes) is divided by the number of matched queries summed over ALL ranks and
/// micro-batches of the step. That count is `stepStatistics`: with Q queries and G ground-truth boxes an image matches
/// min(Q, G) queries at every stage, so it is known from the annotations (after the pipeline's crop) before any
/// forward pass, and the loop sums it over ranks. The stage losses are summed with weight 1 each. An image without
/// ground truth (`data.filter_empty_gt: false`) contributes only focal negatives.
///
/// Evaluation: the last stage's sigmoid scores over queries × classes, the top `maxPerImage` per image (score
/// descending, ties by query-major index; no NMS), boxes mapped back to the original image, gathered over the ranks
/// and scored by `DetectionEvaluation` (COCO box AP; `bbox_mAP` picks the best checkpoint), which writes the COCO
/// results JSON to `WORK_DIR/eval/bbox_step_<8 digits>.json`.
public final class DetectionTask: TrainingTask {
    public let detector: AdaMixerDetector
    public let data: DetectionDataSetup
    public let evaluation: DetectionEvaluation
    /// Matching and loss of every stage.
    public let criterion: AdaMixerCriterion
    /// Detections kept per image at evaluation (`model.adamixer.test.max_per_img`).
    public let maxPerImage: Int
    /// The work directory: the COCO results of the evaluation after step N go to
    /// `WORK_DIR/eval/bbox_step_<8 digits>.json` (`DetectionEvaluation.resultsPath`).
    public let workDirectory: String

    /// Micro-batches assembled by `stepStatistics`, consumed by `loss` (keyed by step and first position).
    private var assembled: [Key: DetectionBatch] = [:]
    private struct Key: Hashable { var step: Int, epoch: Int, positions: Range<Int> }

    public init(model: AdaMixerDetector, data: DetectionDataSetup, maxPerImage: Int = 100, workDirectory: String,
                loss: DetectionLoss = DetectionLoss(), matchingCost: HungarianMatchingCost = .adaMixer) throws {
        precondition(maxPerImage > 0, "DetectionTask: maxPerImage \(maxPerImage) must be positive")
        detector = model
        self.data = data
        self.maxPerImage = maxPerImage
        self.workDirectory = workDirectory
        criterion = AdaMixerCriterion(loss: loss, matchingCost: matchingCost)
        // mmdetection's maxDets (100, 300, 1000): the AP (at 1000) counts every kept detection for 100 or 300 per image.
        evaluation = try DetectionEvaluation(index: data.valIndex, groundTruthPath: data.valAnnotationsPath)
    }

    public var model: Module { detector }
    public var trainingSampleCount: Int { data.trainCount }
    public var trainingGroups: [Int]? { data.trainGroups }
    public var dataDescription: String {
        "\(data.trainDescription) \(data.trainCount) images, \(data.valDescription) \(data.valCount) images"
    }

    private var queries: Int { detector.config.numQueries }
    private var classes: Int { detector.config.numClasses }

    /// Assembles this rank's micro-batches of the step (kept for `loss`) and returns their matched-query count.
    public func stepStatistics(_ slices: [BatchSlice]) throws -> [Double] {
        assembled.removeAll()
        return [Double(try slices.reduce(0) { $0 + matchedQueries(try batch($1)) })]
    }

    /// The queries matched in `batch` at every stage: Σ min(Q, G) over its images.
    private func matchedQueries(_ batch: DetectionBatch) -> Int {
        batch.boxes.reduce(0) { $0 + AdaMixerCriterion.matchedQueries(boxes: $1.count / 4, queries: queries) }
    }

    private func key(_ slice: BatchSlice) -> Key { Key(step: slice.step, epoch: slice.epoch, positions: slice.positions) }

    private func batch(_ slice: BatchSlice) throws -> DetectionBatch {
        let key = key(slice)
        if let batch = assembled[key] { return batch }
        let batch = try data.train.assemble(slice.globalBatch, positions: slice.positions, epoch: slice.epoch, workers: data.numWorkers)
        assembled[key] = batch
        return batch
    }

    /// The sum over stages of each stage's loss; `statistics[0]` is the matched-query count of the step over all ranks
    /// (without statistics, this micro-batch's own count).
    public func loss(_ slice: BatchSlice, statistics: [Double], context: ForwardContext) throws -> Tensor {
        let batch = try batch(slice)
        assembled[key(slice)] = nil
        let matched = statistics.first ?? Double(matchedQueries(batch))
        return try loss(batch, normaliser: Float(max(matched, 1))).total
    }

    /// The loss of an assembled batch and its parts summed over stages (0-d tensors).
    public func loss(_ batch: DetectionBatch, normaliser: Float) throws -> DetectionLoss.Parts {
        let outputs = detector(batch.images, imageSizes: batch.validSizes)
        return try criterion(outputs, boxes: batch.boxes, labels: batch.labels, validSizes: batch.validSizes, normaliser: normaliser) { j, stage in
            let image = batch.imageIndices[j]
            return "training image \(self.data.trainIndex.imageIDs[image]) (\(self.data.trainIndex.fileName(image))), stage \(stage)"
        }
    }

    public func inspect(_ slice: BatchSlice) throws -> ForwardInspection {
        let t0 = Date()
        let batch = try data.train.assemble(slice.globalBatch, positions: slice.positions, epoch: slice.epoch)
        let t1 = Date()
        let outputs = detector(batch.images, imageSizes: batch.validSizes)
        return ForwardInspection(inputShape: batch.images.shape, outputShape: outputs.last!.classLogits.shape,
                                 assembleSeconds: t1.timeIntervalSince(t0), forwardSeconds: Date().timeIntervalSince(t1))
    }

    /// The top `maxPerImage` detections of one image: `logits [Q·C]` and corner `boxes [Q·4]` of the last stage →
    /// labels, boxes (as predicted) and scores, score descending (ties: lower query-major index first).
    public static func topDetections(logits: ArraySlice<Float>, boxes: ArraySlice<Float>, classes: Int, maxPerImage: Int)
        -> (labels: [Int32], boxes: [Float], scores: [Float]) {
        let scores = logits.map { 1 / (1 + Foundation.exp(-$0)) }
        let order = scores.indices.sorted { scores[$0] != scores[$1] ? scores[$0] > scores[$1] : $0 < $1 }.prefix(maxPerImage)
        var labels: [Int32] = [], out: [Float] = [], kept: [Float] = []
        let base = boxes.startIndex
        for k in order {
            let query = k / classes
            labels.append(Int32(k % classes))
            out += boxes[(base + query * 4)..<(base + query * 4 + 4)]
            kept.append(scores[k])
        }
        return (labels, out, kept)
    }

    /// Each rank runs its contiguous share of every global evaluation batch; the detections go to rank 0, which
    /// writes the results file and computes the COCO summary (`DetectionEvaluation`).
    public func evaluate(_ context: EvaluationContext) throws -> Metrics {
        var results = DetectionResults()
        let (q, c) = (queries, classes)
        for batch in DistributedSampler.evaluationBatches(count: data.valCount, batchSize: context.batchSize) {
            try context.checkStop()
            let share = DistributedSampler.evaluationRange(datasetSize: batch.count, rank: context.communicator.rank,
                                                           worldSize: context.communicator.size)
            guard !share.isEmpty else { continue }
            let assembled = try data.val.assemble(Array(batch), positions: share, epoch: 0, workers: data.numWorkers)
            let (logits, boxes) = withoutGradients { () -> ([Float], [Float]) in
                let last = detector(assembled.images, imageSizes: assembled.validSizes).last!
                return (last.classLogits.toArray(), BoxGeometry.corners(last.boxes).toArray())
            }
            for j in assembled.imageIndices.indices {
                let top = Self.topDetections(logits: logits[(j * q * c)..<((j + 1) * q * c)], boxes: boxes[(j * q * 4)..<((j + 1) * q * 4)],
                                             classes: c, maxPerImage: maxPerImage)
                results.add(image: assembled.imageIndices[j], labels: top.labels,
                            boxes: assembled.originalBoxes(top.boxes, sample: j, index: data.valIndex), scores: top.scores)
            }
        }
        return try evaluation.evaluate(results, communicator: context.communicator,
                                       resultsPath: DetectionEvaluation.resultsPath(workDirectory: workDirectory, step: context.step))
    }
}

/// AdaMixer's training criterion (mmdetection's `QueryRoIHead` with `DIIHead.loss` per stage): for every decoder stage,
/// each image's queries are matched one-to-one to its ground-truth boxes on the stage's detached predictions
/// (`HungarianMatchingCost`, `LinearAssignment`), then `DetectionLoss` is taken with the given normaliser; the stage
/// losses are summed with weight 1 each.
public struct AdaMixerCriterion: Sendable {
    public var loss: DetectionLoss
    public var matchingCost: HungarianMatchingCost

    public init(loss: DetectionLoss = DetectionLoss(), matchingCost: HungarianMatchingCost = .adaMixer) {
        self.loss = loss
        self.matchingCost = matchingCost
    }

    /// The matched queries of an image with `count` ground-truth boxes and `queries` queries, at every stage.
    public static func matchedQueries(boxes count: Int, queries: Int) -> Int { min(count, queries) }

    /// The loss of the detector's stage outputs (`AdaMixerStageOutput` per stage, B images) and its parts summed over
    /// stages. `boxes[j]` (absolute xyxy, 4 per box) and `labels[j]` are image j's ground truth, `validSizes[j]` its
    /// size before padding; `normaliser` the matched-query count over every rank (> 0); `describe(j, stage)` names
    /// image j in a matching error (a NaN/Inf cost).
    public func callAsFunction(_ outputs: [AdaMixerStageOutput], boxes: [[Float]], labels: [[Int32]],
                               validSizes: [(height: Int, width: Int)], normaliser: Float,
                               describe: (Int, Int) -> String) throws -> DetectionLoss.Parts {
        precondition(!outputs.isEmpty, "AdaMixerCriterion: no stage outputs")
        let shape = outputs[0].classLogits.shape  // [B, Q, C]
        let (count, queries, classes) = (shape[0], shape[1], shape[2])
        precondition(boxes.count == count && labels.count == count && validSizes.count == count,
                     "AdaMixerCriterion: \(count) images, \(boxes.count) box lists, \(labels.count) label lists, \(validSizes.count) sizes")
        let sizes = validSizes.map { (width: Float($0.width), height: Float($0.height)) }
        var total: Tensor?, classification: Tensor?, l1: Tensor?, giou: Tensor?
        for (stage, output) in outputs.enumerated() {
            let logits = output.classLogits.reshaped([count * queries, classes])
            let corners = BoxGeometry.corners(output.boxes).reshaped([count * queries, 4])
            let (hostLogits, hostBoxes) = (logits.toArray(), corners.toArray())
            let matches = try (0..<count).map { j -> [DetectionMatch] in
                guard !labels[j].isEmpty else { return [] }
                let assignment = try matchingCost.assign(
                    logits: Array(hostLogits[(j * queries * classes)..<((j + 1) * queries * classes)]),
                    boxes: Array(hostBoxes[(j * queries * 4)..<((j + 1) * queries * 4)]), classes: classes,
                    gtBoxes: boxes[j], gtLabels: labels[j], imageWidth: Double(validSizes[j].width),
                    imageHeight: Double(validSizes[j].height), image: describe(j, stage))
                return assignment.rowForColumn.enumerated().compactMap { g, query in
                    query.map { DetectionMatch(query: $0, box: Array(boxes[j][(g * 4)..<(g * 4 + 4)]), label: Int(labels[j][g])) }
                }
            }
            let parts = loss(logits: logits, boxes: corners, matches: matches, imageSizes: sizes, normaliser: normaliser)
            total = total.map { $0 + parts.total } ?? parts.total
            classification = classification.map { $0 + parts.classification } ?? parts.classification
            l1 = l1.map { $0 + parts.l1 } ?? parts.l1
            giou = giou.map { $0 + parts.giou } ?? parts.giou
        }
        return DetectionLoss.Parts(total: total!, classification: classification!, l1: l1!, giou: giou!)
    }
}
