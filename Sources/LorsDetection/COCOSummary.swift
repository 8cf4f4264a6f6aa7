import Foundation

/// The 12 summary numbers of a box evaluation with pycocotools' `COCOeval.summarize()` text.
///
/// With maxDets m1 < m2 < m3: AP, AP50, AP75, APs, APm, APl at m3; AR at m1, m2 and m3; ARs, ARm, ARl at m3. For the
/// default 1, 10, 100 this is pycocotools' summary; for 100, 300, 1000 it is mmdetection's (`COCOevalMP.summarize`,
/// keys `AR@100`, `AR@300`, `AR@1000`). Each number is the mean of the precision (or recall) entries > -1 over the
/// IoU thresholds (or the one threshold), recall thresholds and categories, summed pairwise as numpy sums; -1 when
/// there is none.
public struct COCOSummary: Sendable {
    public struct Entry: Sendable {
        /// The JSON key: AP, AP50, AP75, APs, APm, APl, AR1 | AR@m1, ..., ARs, ARm, ARl.
        public let key: String
        /// The value as a fraction (-1 when undefined).
        public let value: Double
        /// The line pycocotools prints for it.
        public let line: String
    }

    public let entries: [Entry]

    public subscript(key: String) -> Double? { entries.first { $0.key == key }?.value }

    /// The 12 lines, as `COCOeval.summarize()` prints them.
    public var text: String { entries.map(\.line).joined(separator: "\n") }

    /// The summary of `evaluation`, which must have three maxDets.
    public init(_ evaluation: COCOEvaluation) throws {
        let maxDets = evaluation.maxDetections
        guard maxDets.count == 3 else { throw COCOError("the summary needs three maxDets, got \(maxDets)") }
        let last = maxDets[2]
        let arKeys = maxDets == COCOEvaluator.standardMaxDetections ? maxDets.map { "AR\($0)" } : maxDets.map { "AR@\($0)" }
        let specs: [(key: String, ap: Bool, iou: Double?, area: String, maxDet: Int)] = [
            ("AP", true, nil, "all", last), ("AP50", true, 0.5, "all", last), ("AP75", true, 0.75, "all", last),
            ("APs", true, nil, "small", last), ("APm", true, nil, "medium", last), ("APl", true, nil, "large", last),
            (arKeys[0], false, nil, "all", maxDets[0]), (arKeys[1], false, nil, "all", maxDets[1]), (arKeys[2], false, nil, "all", last),
            ("ARs", false, nil, "small", last), ("ARm", false, nil, "medium", last), ("ARl", false, nil, "large", last),
        ]
        entries = specs.map { spec in
            let value = COCOSummary.mean(evaluation, ap: spec.ap, iou: spec.iou, area: spec.area, maxDet: spec.maxDet)
            return Entry(key: spec.key, value: value,
                         line: COCOSummary.line(ap: spec.ap, iou: spec.iou, thresholds: evaluation.iouThresholds, area: spec.area,
                                                maxDet: spec.maxDet, value: value))
        }
    }

    /// `_summarize`: the entries > -1 of precision[t, :, :, area, maxDet] (or recall[t, :, area, maxDet]) in row-major
    /// order, their pairwise sum divided by their count.
    static func mean(_ evaluation: COCOEvaluation, ap: Bool, iou: Double?, area: String, maxDet: Int) -> Double {
        let thresholds = evaluation.iouThresholds.indices.filter { iou == nil || evaluation.iouThresholds[$0] == iou }
        guard let a = evaluation.areaRanges.firstIndex(where: { $0.label == area }),
              let m = evaluation.maxDetections.firstIndex(of: maxDet) else { return -1 }
        var values: [Double] = []
        for t in thresholds {
            for r in ap ? Array(evaluation.recallThresholds.indices) : [0] {
                for k in evaluation.categoryIDs.indices {
                    let value = ap ? evaluation.precision(iou: t, recall: r, category: k, area: a, maxDetections: m)
                                   : evaluation.recall(iou: t, category: k, area: a, maxDetections: m)
                    if value > -1 { values.append(value) }
                }
            }
        }
        if values.isEmpty { return -1 }
        return values.withUnsafeBufferPointer { pairwiseSum($0) } / Double(values.count)
    }

    /// numpy's pairwise summation of float64 (`pairwise_sum`: 8 running sums up to blocks of 128, halves above).
    static func pairwiseSum(_ values: UnsafeBufferPointer<Double>) -> Double {
        let n = values.count
        if n < 8 {
            var sum = 0.0
            for value in values { sum += value }
            return sum
        }
        if n <= 128 {
            var r = Array(values[0..<8])
            var i = 8
            while i < n - n % 8 {
                for j in 0..<8 { r[j] += values[i + j] }
                i += 8
            }
            var sum = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]))
            while i < n {
                sum += values[i]
                i += 1
            }
            return sum
        }
        var half = n / 2
        half -= half % 8
        return pairwiseSum(UnsafeBufferPointer(rebasing: values[0..<half])) + pairwiseSum(UnsafeBufferPointer(rebasing: values[half...]))
    }

    /// ` {:<18} {} @[ IoU={:<9} | area={:>6s} | maxDets={:>3d} ] = {:0.3f}`.
    static func line(ap: Bool, iou: Double?, thresholds: [Double], area: String, maxDet: Int, value: Double) -> String {
        func padRight(_ text: String, _ width: Int) -> String { text + String(repeating: " ", count: max(0, width - text.count)) }
        func padLeft(_ text: String, _ width: Int) -> String { String(repeating: " ", count: max(0, width - text.count)) + text }
        let title = ap ? "Average Precision" : "Average Recall"
        let kind = ap ? "(AP)" : "(AR)"
        let iouText = iou.map { String(format: "%0.2f", $0) }
            ?? String(format: "%0.2f:%0.2f", thresholds[0], thresholds[thresholds.count - 1])
        return " \(padRight(title, 18)) \(kind) @[ IoU=\(padRight(iouText, 9)) | area=\(padLeft(area, 6)) | maxDets=\(padLeft(String(maxDet), 3)) ] = "
            + String(format: "%0.3f", value)
    }
}
