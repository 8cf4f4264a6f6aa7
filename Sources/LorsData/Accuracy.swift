/// Running top-1 / top-5 classification accuracy.
///
/// A sample counts as correct at k when fewer than k classes have a strictly larger logit than
/// the true class (ties resolved in the sample's favour).
public struct TopKAccuracy: Sendable, Equatable {
    public private(set) var total = 0
    public private(set) var correctTop1 = 0
    public private(set) var correctTop5 = 0

    public init() {}

    /// Adds a batch: `logits` row-major `[B, classes]`, `labels` `B` values.
    public mutating func update(logits: [Float], classes: Int, labels: [Int32]) {
        precondition(logits.count == labels.count * classes, "TopKAccuracy: \(logits.count) logits for \(labels.count) × \(classes)")
        for (row, label) in labels.enumerated() {
            let base = row * classes
            let target = logits[base + Int(label)]
            var above = 0
            for c in 0..<classes where logits[base + c] > target { above += 1 }
            if above < 1 { correctTop1 += 1 }
            if above < 5 { correctTop5 += 1 }
            total += 1
        }
    }

    /// Merges another accumulator (e.g. another rank's).
    public mutating func merge(_ other: TopKAccuracy) {
        total += other.total
        correctTop1 += other.correctTop1
        correctTop5 += other.correctTop5
    }

    /// Builds an accumulator from summed counts (after an all-reduce).
    public init(total: Int, correctTop1: Int, correctTop5: Int) {
        self.total = total
        self.correctTop1 = correctTop1
        self.correctTop5 = correctTop5
    }

    /// Top-1 accuracy as a fraction in 0...1 (0 when empty).
    public var top1: Double { total == 0 ? 0 : Double(correctTop1) / Double(total) }
    /// Top-5 accuracy as a fraction in 0...1 (0 when empty).
    public var top5: Double { total == 0 ? 0 : Double(correctTop5) / Double(total) }
}
