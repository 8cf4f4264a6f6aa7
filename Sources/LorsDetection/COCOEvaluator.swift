/// An area range of the COCO evaluation: an object is in it when `lower ≤ area ≤ upper` (both ends inclusive).
public struct COCOAreaRange: Sendable, Equatable {
    public var label: String
    public var lower: Double
    public var upper: Double

    public init(label: String, lower: Double, upper: Double) {
        self.label = label
        self.lower = lower
        self.upper = upper
    }

    /// all [0, 1e10], small [0, 32²], medium [32², 96²], large [96², 1e10].
    public static let standard: [COCOAreaRange] = [
        COCOAreaRange(label: "all", lower: 0, upper: 1e10),
        COCOAreaRange(label: "small", lower: 0, upper: 32 * 32),
        COCOAreaRange(label: "medium", lower: 32 * 32, upper: 96 * 96),
        COCOAreaRange(label: "large", lower: 96 * 96, upper: 1e10),
    ]

    func excludes(_ area: Double) -> Bool { area < lower || area > upper }
}

/// Box AP/AR evaluation of detections against a COCO ground truth with the rules of pycocotools' `COCOeval`
/// (iouType "bbox"); its arrays hold the same float64 values pycocotools computes. docs/interfaces.md
/// (`lors eval-coco`) lists the rules.
public struct COCOEvaluation: Sendable {
    /// The detection limits per image, ascending (the evaluation keeps at most the last per image and category).
    public let maxDetections: [Int]
    /// 0.50, 0.55, ..., 0.95 computed as numpy's `linspace` computes them.
    public let iouThresholds: [Double]
    /// 0.00, 0.01, ..., 1.00 (101 points), as numpy's `linspace`.
    public let recallThresholds: [Double]
    public let areaRanges: [COCOAreaRange]
    /// Sorted category ids (the evaluation's K axis).
    public let categoryIDs: [Int]
    /// Interpolated precision, `[T][R][K][A][M]` flattened row-major; -1 where the category has no ground truth
    /// that counts in that area range.
    public let precision: [Double]
    /// Recall at the last detection, `[T][K][A][M]` row-major; -1 as in `precision`.
    public let recall: [Double]

    public func precision(iou t: Int, recall r: Int, category k: Int, area a: Int, maxDetections m: Int) -> Double {
        precision[(((t * recallThresholds.count + r) * categoryIDs.count + k) * areaRanges.count + a) * maxDetections.count + m]
    }

    public func recall(iou t: Int, category k: Int, area a: Int, maxDetections m: Int) -> Double {
        recall[((t * categoryIDs.count + k) * areaRanges.count + a) * maxDetections.count + m]
    }
}

/// Evaluates detections as pycocotools' `COCOeval(gt, dt, "bbox").evaluate(); accumulate()` does.
public enum COCOEvaluator {
    /// pycocotools' default `maxDets`.
    public static let standardMaxDetections = [1, 10, 100]
    /// mmdetection's `proposal_nums`, its `CocoMetric` default.
    public static let mmdetectionMaxDetections = [100, 300, 1000]

    /// numpy's `linspace(start, stop, count)`: `i · ((stop − start) / (count − 1)) + start`, the last point `stop`.
    static func linspace(_ start: Double, _ stop: Double, _ count: Int) -> [Double] {
        let step = (stop - start) / Double(count - 1)
        var values = (0..<count).map { Double($0) * step + start }
        values[count - 1] = stop
        return values
    }

    /// Checks a `maxDets` list (positive, distinct) and returns it sorted, as `COCOeval.evaluate` sorts it.
    public static func checkedMaxDetections(_ values: [Int]) throws -> [Int] {
        guard !values.isEmpty else { throw COCOError("maxDets is empty") }
        if let bad = values.first(where: { $0 < 1 }) { throw COCOError("maxDets must be positive, got \(bad)") }
        guard Set(values).count == values.count else { throw COCOError("maxDets has a repeated value: \(values)") }
        return values.sorted()
    }

    /// Evaluates every (category, image) pair of the ground truth's images and categories. Detections whose image or
    /// category is not in the ground truth are not evaluated (`COCODetections.load` refuses them).
    public static func evaluate(groundTruth: COCOGroundTruth, detections: [COCODetection],
                                maxDetections: [Int] = standardMaxDetections) throws -> COCOEvaluation {
        let maxDets = try checkedMaxDetections(maxDetections)
        let iouThresholds = linspace(0.5, 0.95, 10)
        let recallThresholds = linspace(0.0, 1.0, 101)
        let areas = COCOAreaRange.standard
        let imageIDs = Array(Set(groundTruth.imageIDs)).sorted()
        let categoryIDs = Array(Set(groundTruth.categories.map(\.id))).sorted()
        let (T, R, K, A, M) = (iouThresholds.count, recallThresholds.count, categoryIDs.count, areas.count, maxDets.count)
        var precision = [Double](repeating: -1, count: T * R * K * A * M)
        var recall = [Double](repeating: -1, count: T * K * A * M)

        let imageIndex = Dictionary(uniqueKeysWithValues: imageIDs.enumerated().map { ($1, $0) })
        let categoryIndex = Dictionary(uniqueKeysWithValues: categoryIDs.enumerated().map { ($1, $0) })
        // Per category: image index → record indices in file order (pycocotools groups per (image, category) in the
        // order of the files).
        var truthByCategory = [[Int: [Int]]](repeating: [:], count: K)
        for (n, annotation) in groundTruth.annotations.enumerated() {
            guard let k = categoryIndex[annotation.categoryID], let i = imageIndex[annotation.imageID] else { continue }
            truthByCategory[k][i, default: []].append(n)
        }
        var detectionsByCategory = [[Int: [Int]]](repeating: [:], count: K)
        for (n, detection) in detections.enumerated() {
            guard let k = categoryIndex[detection.categoryID], let i = imageIndex[detection.imageID] else { continue }
            detectionsByCategory[k][i, default: []].append(n)
        }

        let maxDet = maxDets[maxDets.count - 1]
        for k in 0..<K {
            // The category's detections over all its images (ids ascending), each image's highest score first and at
            // most maxDet of them: `scores[n]` is the n-th one's score, `rank[n]` its place in its image.
            var images: [(truths: [COCOAnnotation], detections: [COCODetection], offset: Int)] = []
            var scores: [Double] = [], rank: [Int] = []
            for i in Set(truthByCategory[k].keys).union(detectionsByCategory[k].keys).sorted() {
                let truths = (truthByCategory[k][i] ?? []).map { groundTruth.annotations[$0] }
                let found = (detectionsByCategory[k][i] ?? []).map { detections[$0] }
                var kept = stableOrderByScore(found.map(\.score)).map { found[$0] }
                if kept.count > maxDet { kept.removeLast(kept.count - maxDet) }
                images.append((truths, kept, scores.count))
                scores.append(contentsOf: kept.map(\.score))
                rank.append(contentsOf: kept.indices)
            }
            let N = scores.count
            var matches = Matches(thresholds: T, detections: N, areas: A)
            var counted = [Int](repeating: 0, count: A)
            for image in images {
                let ious = boxIoUs(detections: image.detections.map(\.box), truths: image.truths.map(\.box),
                                   crowd: image.truths.map(\.isCrowd))
                for a in 0..<A {
                    counted[a] += evaluateImage(truths: image.truths, detections: image.detections, ious: ious, area: areas[a],
                                                iouThresholds: iouThresholds, into: &matches, area: a, offset: image.offset)
                }
            }
            for m in 0..<M {
                // The first maxDets[m] of each image, merged: numpy's stable argsort of the negated scores.
                let selected = (0..<N).filter { rank[$0] < maxDets[m] }
                let order = stableOrderByScore(selected.map { scores[$0] }).map { selected[$0] }
                for a in 0..<A where counted[a] > 0 {
                    for t in 0..<T {
                        let (lastRecall, precisions) = precisionCurve(order: order, matches: matches, area: a, threshold: t,
                                                                      counted: counted[a], recallThresholds: recallThresholds)
                        recall[((t * K + k) * A + a) * M + m] = lastRecall
                        for r in 0..<R { precision[(((t * R + r) * K + k) * A + a) * M + m] = precisions[r] }
                    }
                }
            }
        }
        return COCOEvaluation(maxDetections: maxDets, iouThresholds: iouThresholds, recallThresholds: recallThresholds,
                              areaRanges: areas, categoryIDs: categoryIDs, precision: precision, recall: recall)
    }

    /// Indices ordering `scores` from the highest down, equal scores in their given order: numpy's
    /// `argsort(-scores, kind="mergesort")`, which is stable.
    static func stableOrderByScore(_ scores: [Double]) -> [Int] {
        Array(scores.indices).sorted { scores[$0] > scores[$1] || (scores[$0] == scores[$1] && $0 < $1) }
    }

    /// IoU of every detection with every ground-truth box, `[D][G]` row-major, as pycocotools' `maskUtils.iou` computes
    /// it for boxes (same operations in the same order): 0 unless the boxes overlap with a positive width and height;
    /// against a crowd box the union is the detection's own area. Empty when either side is.
    static func boxIoUs(detections: [COCOBox], truths: [COCOBox], crowd: [Bool]) -> [Double] {
        guard !detections.isEmpty, !truths.isEmpty else { return [] }
        let G = truths.count
        var ious = [Double](repeating: 0, count: detections.count * G)
        for (g, truth) in truths.enumerated() {
            let truthArea = truth.width * truth.height
            for (d, det) in detections.enumerated() {
                let detArea = det.width * det.height
                let w = min(det.width + det.x, truth.width + truth.x) - max(det.x, truth.x)
                if w <= 0 { continue }
                let h = min(det.height + det.y, truth.height + truth.y) - max(det.y, truth.y)
                if h <= 0 { continue }
                let intersection = w * h
                let union = crowd[g] ? detArea : detArea + truthArea - intersection
                ious[d * G + g] = intersection / union
            }
        }
        return ious
    }

    /// Per detection of one category, at each area range and IoU threshold: whether it matched a ground truth, and
    /// whether it is ignored. Index `(area · T + threshold) · N + detection`.
    struct Matches {
        let thresholds: Int, detections: Int
        /// Matched to a ground truth whose id is not 0 (pycocotools stores the matched id and tests it against 0).
        var matched: [Bool]
        /// Matched to an ignored ground truth, or unmatched with an area outside the range.
        var ignored: [Bool]

        init(thresholds: Int, detections: Int, areas: Int) {
            self.thresholds = thresholds
            self.detections = detections
            matched = [Bool](repeating: false, count: areas * thresholds * detections)
            ignored = matched
        }

        func index(area: Int, threshold: Int, detection: Int) -> Int { (area * thresholds + threshold) * detections + detection }
    }

    /// pycocotools' `evaluateImg` for one image and category in one area range: greedy matching at each IoU threshold,
    /// detections in score order, each taking the not yet matched (or crowd) ground truth with the highest IoU ≥ the
    /// threshold, counted ground truths before ignored ones. Writes the detections' flags at `offset` of `matches` and
    /// returns how many ground truths count (not crowd, area in range).
    static func evaluateImage(truths: [COCOAnnotation], detections: [COCODetection], ious: [Double],
                              area: COCOAreaRange, iouThresholds: [Double], into matches: inout Matches, area a: Int,
                              offset: Int) -> Int {
        let T = iouThresholds.count, D = detections.count, G = truths.count
        let ignore = truths.map { $0.isCrowd || area.excludes($0.area) }
        // Ground truths that count first, ignored ones last, each group in file order.
        let order = Array(0..<G).filter { !ignore[$0] } + Array(0..<G).filter { ignore[$0] }
        let orderedIgnore = order.map { ignore[$0] }
        let orderedCrowd = order.map { truths[$0].isCrowd }
        let outside = detections.map { area.excludes($0.area) }
        var truthTaken = [Bool](repeating: false, count: G)
        for t in 0..<T {
            if !ious.isEmpty {
                for g in 0..<G { truthTaken[g] = false }
            }
            for d in 0..<D {
                var matchedID = 0, matchedIgnored = false
                if !ious.isEmpty {
                    var best = min(iouThresholds[t], 1 - 1e-10)
                    var match = -1
                    for g in 0..<G {
                        if truthTaken[g] && !orderedCrowd[g] { continue }
                        if match > -1 && !orderedIgnore[match] && orderedIgnore[g] { break }
                        let iou = ious[d * G + order[g]]
                        if iou < best { continue }
                        best = iou
                        match = g
                    }
                    if match > -1 {
                        matchedIgnored = orderedIgnore[match]
                        matchedID = truths[order[match]].id
                        truthTaken[match] = true
                    }
                }
                let n = matches.index(area: a, threshold: t, detection: offset + d)
                matches.matched[n] = matchedID != 0
                matches.ignored[n] = matchedIgnored || (matchedID == 0 && outside[d])
            }
        }
        return ignore.lazy.filter { !$0 }.count
    }

    /// pycocotools' `accumulate` at one IoU threshold for one category, area range and maxDets, over the detections
    /// `order` (merged in score order): cumulative TP/FP, recall `tp / counted`, precision `tp / (tp + fp + eps)` made
    /// non-increasing from the right, read at each recall threshold at the first point whose recall reaches it (0 past
    /// the last). Returns the recall at the last detection (0 without any) and the interpolated precisions.
    static func precisionCurve(order: [Int], matches: Matches, area a: Int, threshold t: Int, counted: Int,
                               recallThresholds: [Double]) -> (Double, [Double]) {
        let n = order.count
        let epsilon = Double.ulpOfOne  // numpy's spacing(1)
        var recallAt = [Double](repeating: 0, count: n), precisionAt = [Double](repeating: 0, count: n)
        var tp = 0.0, fp = 0.0
        let base = matches.index(area: a, threshold: t, detection: 0)
        for (position, d) in order.enumerated() {
            if !matches.ignored[base + d] {
                if matches.matched[base + d] { tp += 1 } else { fp += 1 }
            }
            recallAt[position] = tp / Double(counted)
            precisionAt[position] = tp / (fp + tp + epsilon)
        }
        let lastRecall = n > 0 ? recallAt[n - 1] : 0
        if n > 1 {
            for position in stride(from: n - 1, to: 0, by: -1) where precisionAt[position] > precisionAt[position - 1] {
                precisionAt[position - 1] = precisionAt[position]
            }
        }
        var precisions = [Double](repeating: 0, count: recallThresholds.count)
        for (r, threshold) in recallThresholds.enumerated() {
            // numpy's searchsorted(side="left"): the first position whose recall is ≥ the threshold.
            var low = 0, high = n
            while low < high {
                let mid = (low + high) / 2
                if recallAt[mid] < threshold { low = mid + 1 } else { high = mid }
            }
            if low >= n { break }
            precisions[r] = precisionAt[low]
        }
        return (lastRecall, precisions)
    }
}
