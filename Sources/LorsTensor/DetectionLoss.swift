/// The per-stage set-prediction loss of a query-based detector (mmdetection's AdaMixer / Sparse R-CNN `DIIHead.loss`):
/// sigmoid focal loss over every query × class, L1 on the matched queries' boxes normalised by the image size and GIoU
/// on their absolute boxes, each divided by the number of matched queries summed over all ranks and weighted.

/// One matched query of an image: the query's index in the image (`0..<queries`) and its ground-truth box (absolute
/// xyxy) and class (`0..<classes`).
public struct DetectionMatch: Sendable, Equatable {
    public var query: Int
    public var box: [Float]
    public var label: Int

    public init(query: Int, box: [Float], label: Int) {
        self.query = query
        self.box = box
        self.label = label
    }
}

/// The weights and constants of the loss (defaults: mmdetection's AdaMixer configs).
public struct DetectionLoss: Sendable, Equatable {
    public var focalAlpha: Float
    public var focalGamma: Float
    public var classWeight: Float
    public var l1Weight: Float
    public var giouWeight: Float
    public var giouEps: Float

    public init(focalAlpha: Float = 0.25, focalGamma: Float = 2, classWeight: Float = 2, l1Weight: Float = 5,
                giouWeight: Float = 2, giouEps: Float = 1e-6) {
        self.focalAlpha = focalAlpha
        self.focalGamma = focalGamma
        self.classWeight = classWeight
        self.l1Weight = l1Weight
        self.giouWeight = giouWeight
        self.giouEps = giouEps
    }

    /// The loss of one stage and its weighted parts (0-d tensors): `total = classification + l1 + giou`, each part
    /// already multiplied by its weight (as mmdetection logs `loss_cls`, `loss_bbox`, `loss_iou`).
    public struct Parts {
        public let total: Tensor
        public let classification: Tensor
        public let l1: Tensor
        public let giou: Tensor

        public init(total: Tensor, classification: Tensor, l1: Tensor, giou: Tensor) {
            self.total = total
            self.classification = classification
            self.l1 = l1
            self.giou = giou
        }
    }

    /// The loss of one stage on this rank's images.
    ///
    /// - `logits`: `[B·Q, C]` class logits, image-major (query `q` of image `b` is row `b·Q + q`).
    /// - `boxes`: `[B·Q, 4]` predicted absolute xyxy boxes, same rows.
    /// - `matches`: per image (`B` arrays), its matched queries (distinct queries).
    /// - `imageSizes`: per image, the (width, height) the L1 term divides the boxes by (x by width, y by height;
    ///   mmdetection's `imgs_whwh`, the image size after resizing, before padding).
    /// - `normaliser`: the number of matched queries summed over ALL ranks (> 0; with no match anywhere pass 1),
    ///   so the summed gradients of the ranks do not depend on how images are split among them.
    ///
    /// Focal targets are one-hot at the matched class for matched queries and all zero for the others; with no match
    /// on this rank the L1 and GIoU parts are `0 · Σ boxes` (zero, with zero gradients), as mmdetection.
    public func callAsFunction(logits: Tensor, boxes: Tensor, matches: [[DetectionMatch]], imageSizes: [(width: Float, height: Float)],
                               normaliser: Float) -> Parts {
        precondition(logits.rank == 2, "DetectionLoss logits must be [B·Q, C], got \(logits.shape)")
        precondition(boxes.shape == [logits.shape[0], 4], "DetectionLoss boxes \(boxes.shape) vs logits \(logits.shape)")
        precondition(!matches.isEmpty && logits.shape[0] % matches.count == 0,
                     "DetectionLoss: \(logits.shape[0]) query rows are not a multiple of \(matches.count) images")
        precondition(imageSizes.count == matches.count, "DetectionLoss: \(imageSizes.count) image sizes for \(matches.count) images")
        precondition(normaliser > 0 && normaliser.isFinite, "DetectionLoss normaliser \(normaliser) must be positive")
        let classes = logits.shape[1], queries = logits.shape[0] / matches.count
        var oneHot = [Float](repeating: 0, count: logits.count)
        var rows: [Int32] = [], targetBoxes: [Float] = [], targetNormalised: [Float] = [], whwh: [Float] = []
        for (image, imageMatches) in matches.enumerated() {
            let (w, h) = imageSizes[image]
            precondition(w > 0 && h > 0, "DetectionLoss: image \(image) has size \(w) × \(h)")
            var seen = Set<Int>()
            for m in imageMatches {
                precondition(m.query >= 0 && m.query < queries, "DetectionLoss: image \(image) query \(m.query) out of range 0..<\(queries)")
                precondition(seen.insert(m.query).inserted, "DetectionLoss: image \(image) matches query \(m.query) twice")
                precondition(m.label >= 0 && m.label < classes, "DetectionLoss: image \(image) label \(m.label) out of range 0..<\(classes)")
                precondition(m.box.count == 4, "DetectionLoss: image \(image) query \(m.query) box has \(m.box.count) values, not 4")
                let row = image * queries + m.query
                oneHot[row * classes + m.label] = 1
                rows.append(Int32(row))
                targetBoxes += m.box
                let size = [w, h, w, h]
                for k in 0..<4 { targetNormalised.append(m.box[k] / size[k]) }
                whwh += size
            }
        }
        let targets = Tensor(oneHot, shape: logits.shape)
        let reduction = LossReduction.sumDividedBy(normaliser)
        let classification = Tensor.sigmoidFocalLoss(logits, targets: targets, alpha: focalAlpha, gamma: focalGamma,
                                                     reduction: reduction).scaled(by: classWeight)
        let l1: Tensor, giou: Tensor
        if rows.isEmpty {
            l1 = boxes.sum().scaled(by: 0)
            giou = boxes.sum().scaled(by: 0)
        } else {
            let matched = boxes.indexSelect(axis: 0, rows)
            let m = rows.count
            l1 = Tensor.l1Loss(matched.div(Tensor(whwh, shape: [m, 4])), Tensor(targetNormalised, shape: [m, 4]),
                               reduction: reduction).scaled(by: l1Weight)
            giou = Tensor.giouLoss(predicted: matched, target: Tensor(targetBoxes, shape: [m, 4]), eps: giouEps,
                                   reduction: reduction).scaled(by: giouWeight)
        }
        return Parts(total: classification.add(l1).add(giou), classification: classification, l1: l1, giou: giou)
    }
}
