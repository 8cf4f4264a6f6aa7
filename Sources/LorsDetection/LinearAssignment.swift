/// An error of the linear-assignment solver or of the matching cost: the description names the image.
public struct AssignmentError: Error, CustomStringConvertible, Equatable, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// An optimal one-to-one assignment of a rectangular cost matrix (rows: queries, columns: ground-truth boxes).
public struct LinearAssignment: Sendable, Equatable {
    /// For every column, the row assigned to it; `nil` only when there are fewer rows than columns (then exactly
    /// `rows` columns have a row).
    public var rowForColumn: [Int?]
    /// The sum of the assigned entries' costs, added in column order.
    public var totalCost: Double

    public init(rowForColumn: [Int?], totalCost: Double) {
        self.rowForColumn = rowForColumn
        self.totalCost = totalCost
    }

    /// The minimum-cost assignment of `costs` (`rows` × `columns`, row-major: `costs[r * columns + c]`), as scipy's
    /// `linear_sum_assignment` finds it: min(rows, columns) pairs, each row and each column used at most once, with
    /// the least total cost.
    ///
    /// The solver is the shortest-augmenting-path method with dual potentials (the Jonker–Volgenant family; Crouse's
    /// formulation, which scipy uses), in float64: the columns are taken in order 0, 1, …; for each, a Dijkstra
    /// search over the rows on reduced costs `c[r][j] − u[j] − v[r]` finds the cheapest augmenting path to a free
    /// row, the potentials are updated and the path is flipped. O(columns² · rows) time, O(rows + columns) memory
    /// besides the matrix.
    ///
    /// Ties (deterministic, so a result is reproducible bit for bit): when the search picks the next row, it takes
    /// the least tentative distance; among rows at that distance a free row wins (it ends the search), and among
    /// those, and otherwise, the lowest row index. A constant matrix thus assigns row c to column c. With more columns
    /// than rows the solver runs on the transposed matrix (rows augmented in order, columns scanned), so the same rule
    /// holds with the roles of rows and columns exchanged.
    ///
    /// No columns (an image without boxes) or no rows: nothing is matched (every column `nil`), total 0. A NaN or
    /// infinite cost, or a `costs` count other than `rows · columns`, is an error naming `image` (and the entry).
    public static func solve(costs: [Double], rows: Int, columns: Int, image: String) throws -> LinearAssignment {
        guard rows >= 0, columns >= 0, costs.count == rows * columns else {
            throw AssignmentError("\(image): a cost matrix of \(rows) × \(columns) needs \(max(rows, 0) * max(columns, 0)) entries, got \(costs.count)")
        }
        for (index, value) in costs.enumerated() where !value.isFinite {
            throw AssignmentError("\(image): the matching cost of query \(index / columns), box \(index % columns) is \(value) (costs must be finite)")
        }
        if rows == 0 || columns == 0 {
            return LinearAssignment(rowForColumn: Array(repeating: nil, count: columns), totalCost: 0)
        }
        if rows >= columns {
            let scanForAugmented = augment(count: columns, scanned: rows) { scan, aug in costs[scan * columns + aug] }
            var total = 0.0
            for c in 0..<columns { total += costs[scanForAugmented[c] * columns + c] }
            return LinearAssignment(rowForColumn: scanForAugmented, totalCost: total)
        }
        // More columns than rows: augment the rows, scan the columns.
        let columnForRow = augment(count: rows, scanned: columns) { scan, aug in costs[aug * columns + scan] }
        var rowForColumn = [Int?](repeating: nil, count: columns)
        for r in 0..<rows { rowForColumn[columnForRow[r]] = r }
        var total = 0.0
        for c in 0..<columns { if let r = rowForColumn[c] { total += costs[r * columns + c] } }
        return LinearAssignment(rowForColumn: rowForColumn, totalCost: total)
    }

    /// Assigns each of `count` augmented nodes a distinct one of `scanned ≥ count` scanned nodes at least total
    /// `cost(scanned, augmented)`; returns the scanned node of each augmented node.
    private static func augment(count: Int, scanned: Int, cost: (Int, Int) -> Double) -> [Int] {
        var u = [Double](repeating: 0, count: count)       // potentials of the augmented side
        var v = [Double](repeating: 0, count: scanned)     // potentials of the scanned side
        var scanForAug = [Int](repeating: -1, count: count)
        var augForScan = [Int](repeating: -1, count: scanned)
        var distance = [Double](repeating: .infinity, count: scanned)
        var predecessor = [Int](repeating: -1, count: scanned)
        var scannedDone = [Bool](repeating: false, count: scanned)
        var augInTree = [Bool](repeating: false, count: count)
        var treeAug: [Int] = []
        var treeScan: [Int] = []
        treeAug.reserveCapacity(count)
        treeScan.reserveCapacity(scanned)

        for start in 0..<count {
            for s in 0..<scanned { distance[s] = .infinity; scannedDone[s] = false }
            for a in treeAug { augInTree[a] = false }
            treeAug.removeAll(keepingCapacity: true)
            treeScan.removeAll(keepingCapacity: true)

            var current = start
            var minimum = 0.0
            var sink = -1
            while sink < 0 {
                augInTree[current] = true
                treeAug.append(current)
                var best = -1
                var bestDistance = Double.infinity
                var bestFree = false
                for s in 0..<scanned where !scannedDone[s] {
                    let d = minimum + cost(s, current) - u[current] - v[s]
                    if d < distance[s] {
                        distance[s] = d
                        predecessor[s] = current
                    }
                    let ds = distance[s]
                    let free = augForScan[s] < 0
                    // Least distance; at equal distance a free node first; then the lowest index (scan order).
                    if best < 0 || ds < bestDistance || (ds == bestDistance && free && !bestFree) {
                        best = s
                        bestDistance = ds
                        bestFree = free
                    }
                }
                minimum = bestDistance
                scannedDone[best] = true
                treeScan.append(best)
                if bestFree {
                    sink = best
                } else {
                    current = augForScan[best]
                }
            }

            // Potentials: keep reduced costs non-negative and tight on the matching and the new path.
            u[start] += minimum
            for a in treeAug where a != start { u[a] += minimum - distance[scanForAug[a]] }
            for s in treeScan { v[s] -= minimum - distance[s] }

            // Flip the path from the sink back to the start.
            var s = sink
            while true {
                let a = predecessor[s]
                augForScan[s] = a
                let previous = scanForAug[a]
                scanForAug[a] = s
                if a == start { break }
                s = previous
            }
        }
        return scanForAug
    }
}
