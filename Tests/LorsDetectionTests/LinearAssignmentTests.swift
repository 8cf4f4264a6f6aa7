import Foundation
import XCTest
import LorsDetection
import LorsTestSupport

/// The assignment solver: optimal (against brute force over every injection and against scipy's
/// `linear_sum_assignment` on the fixtures of scripts/make_assignment_fixtures.py), its tie rule, empty and transposed
/// matrices, and non-finite costs.
final class LinearAssignmentTests: XCTestCase {
    static var fixtures: URL {
        get throws { try XCTUnwrap(Bundle.module.url(forResource: "Fixtures", withExtension: nil)) }
    }

    /// The least total over every injection of the smaller side into the larger (columns into rows when rows ≥
    /// columns), by enumeration.
    static func bruteForce(_ costs: [Double], rows: Int, columns: Int) -> Double {
        var used = [Bool](repeating: false, count: max(rows, columns))
        var best = Double.infinity
        let tall = rows >= columns
        let small = tall ? columns : rows, large = tall ? rows : columns
        func visit(_ k: Int, _ sum: Double) {
            if k == small { best = min(best, sum); return }
            for j in 0..<large where !used[j] {
                used[j] = true
                visit(k + 1, sum + (tall ? costs[j * columns + k] : costs[k * columns + j]))
                used[j] = false
            }
        }
        visit(0, 0)
        return best
    }

    /// Checks that `result` is a valid assignment of min(rows, columns) pairs whose costs sum to `totalCost`.
    static func checkValid(_ result: LinearAssignment, _ costs: [Double], rows: Int, columns: Int,
                           file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(result.rowForColumn.count, columns, file: file, line: line)
        let assigned = result.rowForColumn.compactMap { $0 }
        XCTAssertEqual(assigned.count, min(rows, columns), file: file, line: line)
        XCTAssertEqual(Set(assigned).count, assigned.count, "a row assigned twice", file: file, line: line)
        XCTAssertTrue(assigned.allSatisfy { (0..<rows).contains($0) }, file: file, line: line)
        var sum = 0.0
        for (c, r) in result.rowForColumn.enumerated() { if let r { sum += costs[r * columns + c] } }
        XCTAssertEqual(sum, result.totalCost, file: file, line: line)
    }

    func testOptimalCostEqualsBruteForceOnRandomMatrices() throws {
        var rng = SplitMix(seed: 0x5EED_A551)
        var checked = 0
        for rows in 1...9 {
            for columns in 1...9 where min(rows, columns) <= 7 {
                let injections = (0..<min(rows, columns)).reduce(1) { $0 * (max(rows, columns) - $1) }
                let seeds = injections > 20_000 ? 2 : 8
                for seed in 0..<seeds {
                    for kind in 0..<4 {
                        let costs: [Double] = (0..<(rows * columns)).map { _ in
                            switch kind {
                            case 0: return Double(rng.float()) * 100                 // distinct floats
                            case 1: return Double(rng.int(0, 2))                       // integers, many ties
                            case 2: return Double(rng.int(-3, 3)) * 0.5                // halves, ties, negative
                            default: return Double(rng.int(0, 1)) * 1e6 + Double(rng.int(0, 4))  // large spread
                            }
                        }
                        let result = try LinearAssignment.solve(costs: costs, rows: rows, columns: columns,
                                                                image: "random \(rows)x\(columns) seed \(seed)")
                        Self.checkValid(result, costs, rows: rows, columns: columns)
                        let best = Self.bruteForce(costs, rows: rows, columns: columns)
                        if kind == 0 {
                            XCTAssertEqual(result.totalCost, best, accuracy: 1e-9 * max(1, abs(best)), "\(rows)x\(columns) seed \(seed)")
                        } else {
                            XCTAssertEqual(result.totalCost, best, "\(rows)x\(columns) seed \(seed) kind \(kind)")
                        }
                        checked += 1
                    }
                }
            }
        }
        XCTAssertGreaterThan(checked, 1000)
    }

    func testTieRuleIsTheScanOrder() throws {
        // A constant matrix: column c takes row c (a free row wins a tie, then the lowest index).
        let square = try LinearAssignment.solve(costs: [Double](repeating: 1, count: 16), rows: 4, columns: 4, image: "constant")
        XCTAssertEqual(square.rowForColumn, [0, 1, 2, 3])
        XCTAssertEqual(square.totalCost, 4)
        let tall = try LinearAssignment.solve(costs: [Double](repeating: 0, count: 15), rows: 5, columns: 3, image: "constant")
        XCTAssertEqual(tall.rowForColumn, [0, 1, 2])
        // Transposed: the rows are augmented in order and the columns scanned.
        let wide = try LinearAssignment.solve(costs: [Double](repeating: 0, count: 6), rows: 2, columns: 3, image: "constant")
        XCTAssertEqual(wide.rowForColumn, [0, 1, nil])
        // Rows 1 and 3 tie for column 0 at the least cost: the lower index wins; row 2 is then the best for column 1.
        let costs: [Double] = [5, 9,
                               1, 7,
                               4, 0,
                               1, 8]
        let result = try LinearAssignment.solve(costs: costs, rows: 4, columns: 2, image: "ties")
        XCTAssertEqual(result.rowForColumn, [1, 2])
        XCTAssertEqual(result.totalCost, 1)
        // The same input gives the same answer every time.
        var rng = SplitMix(seed: 42)
        let random = (0..<(30 * 12)).map { _ in Double(rng.int(0, 3)) }
        let first = try LinearAssignment.solve(costs: random, rows: 30, columns: 12, image: "repeat")
        for _ in 0..<3 {
            XCTAssertEqual(try LinearAssignment.solve(costs: random, rows: 30, columns: 12, image: "repeat"), first)
        }
    }

    func testEmptyMatricesMatchNothing() throws {
        XCTAssertEqual(try LinearAssignment.solve(costs: [], rows: 300, columns: 0, image: "no boxes"),
                       LinearAssignment(rowForColumn: [], totalCost: 0))
        XCTAssertEqual(try LinearAssignment.solve(costs: [], rows: 0, columns: 2, image: "no queries"),
                       LinearAssignment(rowForColumn: [nil, nil], totalCost: 0))
        XCTAssertEqual(try LinearAssignment.solve(costs: [], rows: 0, columns: 0, image: "nothing"),
                       LinearAssignment(rowForColumn: [], totalCost: 0))
    }

    func testNonFiniteCostsAndBadShapesNameTheImage() throws {
        for bad in [Double.nan, .infinity, -.infinity] {
            var costs = [Double](repeating: 1, count: 12)
            costs[7] = bad
            XCTAssertThrowsError(try LinearAssignment.solve(costs: costs, rows: 4, columns: 3, image: "image 139 (000000000139.jpg)")) { error in
                let text = String(describing: error)
                XCTAssertTrue(text.contains("image 139 (000000000139.jpg)"), text)
                XCTAssertTrue(text.contains("query 2, box 1"), text)
                XCTAssertTrue(text.contains("\(bad)"), text)
            }
        }
        XCTAssertThrowsError(try LinearAssignment.solve(costs: [1, 2, 3], rows: 2, columns: 2, image: "image 7")) { error in
            XCTAssertTrue(String(describing: error).contains("image 7"), String(describing: error))
        }
    }

    func testCostAndUniqueAssignmentEqualScipy() throws {
        let data = try Data(contentsOf: try Self.fixtures.appendingPathComponent("assignment_solver.json"))
        let root = try XCTUnwrap(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        let cases = try XCTUnwrap(root["cases"] as? [[String: Any]])
        XCTAssertEqual(cases.count, 20)
        var unique = 0, wide = 0, large = 0
        for entry in cases {
            let name = try XCTUnwrap(entry["name"] as? String)
            let rows = try XCTUnwrap(entry["rows"] as? Int), columns = try XCTUnwrap(entry["columns"] as? Int)
            let costs = try XCTUnwrap(entry["costs"] as? [Any]).map { try XCTUnwrap(($0 as? NSNumber)?.doubleValue) }
            let total = try XCTUnwrap((entry["total"] as? NSNumber)?.doubleValue)
            let result = try LinearAssignment.solve(costs: costs, rows: rows, columns: columns, image: name)
            Self.checkValid(result, costs, rows: rows, columns: columns)
            XCTAssertEqual(result.totalCost, total, accuracy: 1e-9 * max(1, abs(total)), name)
            if let expected = entry["row_for_column"] as? [Any] {
                XCTAssertEqual(result.rowForColumn, expected.map { $0 as? Int }, name)
                unique += 1
            }
            if rows < columns { wide += 1 }
            if rows * columns >= 300 * 20 { large += 1 }
        }
        XCTAssertGreaterThanOrEqual(unique, 10)
        XCTAssertGreaterThanOrEqual(wide, 2)
        XCTAssertGreaterThanOrEqual(large, 3)
    }

    func testThreeHundredByOneHundredSolves() throws {
        var rng = SplitMix(seed: 300_100)
        let rows = 300, columns = 100
        let costs = (0..<(rows * columns)).map { _ in Double(rng.float()) * 10 }
        let result = try LinearAssignment.solve(costs: costs, rows: rows, columns: columns, image: "300x100")
        Self.checkValid(result, costs, rows: rows, columns: columns)
        // No worse than assigning each column its cheapest free row in turn.
        var used = Set<Int>(), greedy = 0.0
        for c in 0..<columns {
            let r = (0..<rows).filter { !used.contains($0) }.min { costs[$0 * columns + c] < costs[$1 * columns + c] }!
            used.insert(r)
            greedy += costs[r * columns + c]
        }
        XCTAssertLessThanOrEqual(result.totalCost, greedy)
    }
}
