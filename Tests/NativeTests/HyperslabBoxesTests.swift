import LorsNative
import XCTest

final class HyperslabBoxesTests: XCTestCase {
    /// Row-major flat indices covered by `boxes`, in the order the boxes list them.
    private func flatIndices(_ boxes: [HyperslabBox], shape: [Int]) -> [Int] {
        var result: [Int] = []
        for box in boxes {
            XCTAssertTrue(box.count.allSatisfy { $0 > 0 }, "empty extent in \(box)")
            var index = [Int](repeating: 0, count: shape.count)
            let total = box.elementCount
            for _ in 0..<total {
                var flat = 0
                for axis in 0..<shape.count {
                    let coordinate = box.start[axis] + index[axis]
                    XCTAssertLessThan(coordinate, shape[axis], "box \(box) leaves shape \(shape)")
                    flat = flat * shape[axis] + coordinate
                }
                result.append(flat)
                var axis = shape.count - 1
                while axis >= 0 {
                    index[axis] += 1
                    if index[axis] < box.count[axis] { break }
                    index[axis] = 0
                    axis -= 1
                }
            }
        }
        return result
    }

    func testTwoDimensionalRangeNeedsAtMostThreeBoxes() {
        let shape = [4, 5]
        let boxes = hyperslabBoxes(forFlatRange: 3..<17, shape: shape)
        XCTAssertEqual(boxes, [
            HyperslabBox(start: [0, 3], count: [1, 2]),
            HyperslabBox(start: [1, 0], count: [2, 5]),
            HyperslabBox(start: [3, 0], count: [1, 2]),
        ])
        XCTAssertEqual(hyperslabBoxes(forFlatRange: 0..<20, shape: shape), [HyperslabBox(start: [0, 0], count: [4, 5])])
        XCTAssertEqual(hyperslabBoxes(forFlatRange: 6..<8, shape: shape), [HyperslabBox(start: [1, 1], count: [1, 2])])
        XCTAssertEqual(hyperslabBoxes(forFlatRange: 5..<5, shape: shape), [])
    }

    func testEveryRangeOfSmallShapesIsCoveredExactlyInOrder() {
        for shape in [[7], [3, 4], [2, 3, 4], [3, 1, 2, 3], [2, 0, 3], [1, 1, 5]] {
            let total = shape.reduce(1, *)
            for lower in 0...total {
                for upper in lower...total {
                    let boxes = hyperslabBoxes(forFlatRange: lower..<upper, shape: shape)
                    XCTAssertEqual(flatIndices(boxes, shape: shape), Array(lower..<upper), "shape \(shape) range \(lower)..<\(upper)")
                    XCTAssertLessThanOrEqual(boxes.count, 2 * shape.count - 1, "shape \(shape) range \(lower)..<\(upper)")
                }
            }
        }
    }
}
