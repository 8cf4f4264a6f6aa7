/// One axis-aligned box of an N-d array: `start[i] ..< start[i] + count[i]` on each axis.
public struct HyperslabBox: Equatable, Sendable {
    /// First index on each axis.
    public var start: [Int]
    /// Extent on each axis (all > 0).
    public var count: [Int]

    /// Creates a box from its start and extent on each axis.
    public init(start: [Int], count: [Int]) {
        self.start = start
        self.count = count
    }

    /// Number of elements in the box.
    public var elementCount: Int { count.reduce(1, *) }
}

/// Splits a contiguous range of flat (row-major) element indices of an array of shape `shape` into
/// axis-aligned boxes whose union is exactly that range.
///
/// For shape `[d0, d1, ..., dn]` with inner size `S = d1·…·dn`, the range `[a, b)` becomes: a partial leading
/// row (recursively split inside row `a / S`), a block of whole rows, and a partial trailing row (recursively
/// split). A 2-D array needs at most 3 boxes, an N-d one at most `2N - 1`. The boxes are returned in flat
/// order and are disjoint, so the row-major order of their union equals the order of the flat range —
/// which is what HDF5 uses to pair a 1-D memory buffer with a union of hyperslabs.
///
/// - Precondition: `shape` has at least one axis, all extents ≥ 0, and `range` lies within the element count.
public func hyperslabBoxes(forFlatRange range: Range<Int>, shape: [Int]) -> [HyperslabBox] {
    precondition(!shape.isEmpty, "hyperslabBoxes needs at least one axis")
    let total = shape.reduce(1, *)
    precondition(range.lowerBound >= 0 && range.upperBound <= total,
                 "flat range \(range) outside 0..<\(total) for shape \(shape)")
    var boxes: [HyperslabBox] = []
    appendBoxes(range.lowerBound, range.upperBound, shape: shape[...], prefix: [], into: &boxes)
    return boxes
}

private func appendBoxes(_ lower: Int, _ upper: Int, shape: ArraySlice<Int>, prefix: [Int],
                         into boxes: inout [HyperslabBox]) {
    guard lower < upper else { return }
    let inner = shape.dropFirst()
    let innerSize = inner.reduce(1, *)
    let innerZeros = [Int](repeating: 0, count: inner.count)
    let innerFull = Array(inner)
    if inner.isEmpty {
        boxes.append(HyperslabBox(start: prefix + [lower], count: [Int](repeating: 1, count: prefix.count) + [upper - lower]))
        return
    }
    let ones = [Int](repeating: 1, count: prefix.count)
    var lower = lower
    // Partial leading row.
    if lower % innerSize != 0 {
        let row = lower / innerSize
        let rowEnd = (row + 1) * innerSize
        let end = Swift.min(upper, rowEnd)
        appendBoxes(lower - row * innerSize, end - row * innerSize, shape: inner, prefix: prefix + [row], into: &boxes)
        lower = end
        if lower >= upper { return }
    }
    // Whole rows.
    let fullRows = (upper - lower) / innerSize
    if fullRows > 0 {
        let row = lower / innerSize
        boxes.append(HyperslabBox(start: prefix + [row] + innerZeros, count: ones + [fullRows] + innerFull))
        lower += fullRows * innerSize
    }
    // Partial trailing row.
    if lower < upper {
        let row = lower / innerSize
        appendBoxes(0, upper - row * innerSize, shape: inner, prefix: prefix + [row], into: &boxes)
    }
}
