import Foundation

/// The matching cost of AdaMixer's (and Sparse R-CNN's) `HungarianAssigner`, with mmdetection's three cost terms,
/// and the one-to-one assignment of one image's queries to its ground-truth boxes (`LinearAssignment`).
///
/// For query q and box g of label l (mmdetection's `FocalLossCost`, `BBoxL1Cost`, `IoUCost`):
/// - class: p = sigmoid(logit[q][l]),
///   `pos = −α · (1 − p)^γ · log(p + eps)`, `neg = −(1 − α) · p^γ · log(1 − p + eps)`, cost `classWeight · (pos − neg)`;
/// - L1: `l1Weight · Σ_k |pred_k / f_k − gt_k / f_k|` over the four xyxy coordinates, f = (w, h, w, h) the image's
///   valid (unpadded) width and height (mmdetection's `img_shape` factor);
/// - GIoU: `−giouWeight · GIoU(pred, gt)` on absolute xyxy boxes, with mmdetection's `bbox_overlaps` guards: the
///   union and the enclosing box's area are raised to at least `overlapEps` (1e-6) before dividing, and negative
///   intersection or enclosure sides count as 0.
///
/// Precision: the inputs are the network's float32 outputs; every step here is float64 (mmdetection computes in
/// float32). For entries whose logit at the box's label is at most 4 (p ≤ 0.982) the two agree within 1e-5 relative
/// (tested against torch); above, float32's 1 − p loses digits (about 5e-5 relative at logit 8), and beyond about 17
/// float32 rounds p to 1, so its class cost flattens at classWeight · (1 − α) · log(eps) (−41.4) while float64 keeps
/// following the logit. mmdetection's Sparse R-CNN head passes the predictions through a cxcywh round trip before the L1 term; that
/// changes them only by float32 rounding and is not repeated here.
public struct HungarianMatchingCost: Sendable, Equatable {
    public var classWeight: Double
    public var alpha: Double
    public var gamma: Double
    public var eps: Double
    public var l1Weight: Double
    public var giouWeight: Double
    public var overlapEps: Double

    public init(classWeight: Double = 2, alpha: Double = 0.25, gamma: Double = 2, eps: Double = 1e-12,
                l1Weight: Double = 5, giouWeight: Double = 2, overlapEps: Double = 1e-6) {
        self.classWeight = classWeight
        self.alpha = alpha
        self.gamma = gamma
        self.eps = eps
        self.l1Weight = l1Weight
        self.giouWeight = giouWeight
        self.overlapEps = overlapEps
    }

    /// AdaMixer's assigner: `FocalLossCost(weight=2.0)` (α 0.25, γ 2, eps 1e-12), `BBoxL1Cost(weight=5.0)`,
    /// `IoUCost(iou_mode='giou', weight=2.0)`.
    public static let adaMixer = HungarianMatchingCost()

    /// The cost matrix [Q, G] (row-major: `result[q * G + g]`) of one image.
    /// - Parameters:
    ///   - logits: [Q, C] class logits (before the sigmoid), row-major.
    ///   - boxes: [Q, 4] predicted boxes, absolute xyxy pixels of the transformed image.
    ///   - classes: C.
    ///   - gtBoxes: [G, 4] ground-truth boxes, absolute xyxy pixels.
    ///   - gtLabels: [G] labels in 0..<C.
    ///   - imageWidth, imageHeight: the image's valid size (before padding).
    ///   - image: names the image in errors (e.g. "image 139 (000000000139.jpg)").
    /// Shapes that do not fit, a label outside 0..<C and a non-positive or non-finite image size are errors naming
    /// `image`. Non-finite inputs give non-finite costs, which `assign` reports.
    public func costs(logits: [Float], boxes: [Float], classes: Int, gtBoxes: [Float], gtLabels: [Int32],
                      imageWidth: Double, imageHeight: Double, image: String) throws -> [Double] {
        guard classes > 0, logits.count % classes == 0 else {
            throw AssignmentError("\(image): \(logits.count) class logits do not divide into \(classes) classes")
        }
        let queries = logits.count / classes
        guard boxes.count == queries * 4 else {
            throw AssignmentError("\(image): \(queries) queries need \(queries * 4) box coordinates, got \(boxes.count)")
        }
        let count = gtLabels.count
        guard gtBoxes.count == count * 4 else {
            throw AssignmentError("\(image): \(count) ground-truth labels need \(count * 4) box coordinates, got \(gtBoxes.count)")
        }
        guard imageWidth > 0, imageHeight > 0, imageWidth.isFinite, imageHeight.isFinite else {
            throw AssignmentError("\(image): the image size \(imageWidth) × \(imageHeight) is not positive and finite")
        }
        if let bad = gtLabels.firstIndex(where: { $0 < 0 || Int($0) >= classes }) {
            throw AssignmentError("\(image): ground-truth box \(bad) has label \(gtLabels[bad]), outside 0..<\(classes)")
        }
        var result = [Double](repeating: 0, count: queries * count)
        for q in 0..<queries {
            let p0 = Double(boxes[q * 4]), p1 = Double(boxes[q * 4 + 1])
            let p2 = Double(boxes[q * 4 + 2]), p3 = Double(boxes[q * 4 + 3])
            let predArea = (p2 - p0) * (p3 - p1)
            for g in 0..<count {
                let g0 = Double(gtBoxes[g * 4]), g1 = Double(gtBoxes[g * 4 + 1])
                let g2 = Double(gtBoxes[g * 4 + 2]), g3 = Double(gtBoxes[g * 4 + 3])

                let logit = Double(logits[q * classes + Int(gtLabels[g])])
                let p = 1 / (1 + exp(-logit))
                let negative = -(1 - alpha) * pow(p, gamma) * log(1 - p + eps)
                let positive = -alpha * pow(1 - p, gamma) * log(p + eps)
                let classCost = (positive - negative) * classWeight

                let l1 = abs(p0 / imageWidth - g0 / imageWidth) + abs(p1 / imageHeight - g1 / imageHeight)
                    + abs(p2 / imageWidth - g2 / imageWidth) + abs(p3 / imageHeight - g3 / imageHeight)

                let gtArea = (g2 - g0) * (g3 - g1)
                let overlap = max(min(p2, g2) - max(p0, g0), 0) * max(min(p3, g3) - max(p1, g1), 0)
                let union = max(predArea + gtArea - overlap, overlapEps)
                let enclosed = max(max(p2, g2) - min(p0, g0), 0) * max(max(p3, g3) - min(p1, g1), 0)
                let enclosedArea = max(enclosed, overlapEps)
                let giou = overlap / union - (enclosedArea - union) / enclosedArea

                result[q * count + g] = classCost + l1 * l1Weight + (-giou) * giouWeight
            }
        }
        return result
    }

    /// The query matched to each ground-truth box of one image (`result.rowForColumn[g]`), minimising the total
    /// `costs(...)`; see `LinearAssignment.solve` for the solver and its tie rule. With fewer queries than boxes, boxes
    /// without a query are `nil`. No boxes: no matches. A non-finite cost is an error naming `image`, the query and the
    /// box.
    public func assign(logits: [Float], boxes: [Float], classes: Int, gtBoxes: [Float], gtLabels: [Int32],
                       imageWidth: Double, imageHeight: Double, image: String) throws -> LinearAssignment {
        let matrix = try costs(logits: logits, boxes: boxes, classes: classes, gtBoxes: gtBoxes, gtLabels: gtLabels,
                               imageWidth: imageWidth, imageHeight: imageHeight, image: image)
        return try LinearAssignment.solve(costs: matrix, rows: classes > 0 ? logits.count / classes : 0,
                                          columns: gtLabels.count, image: image)
    }
}
