/// Device-side random draws (dropout masks), keyed as `RandomKey` documents.
public protocol RandomKernels {
    /// Uniforms in [0, 1) for a `[rows, rowLength]` buffer; row r uses the key's stream with
    /// sample index `firstRow + r`, so a row's draws do not depend on which rank holds it.
    func fillUniformRows(_ out: UnsafeMutablePointer<Float>, rows: Int, rowLength: Int, key: RandomKey, firstRow: Int)
    /// Inverted-dropout multipliers: `1/(1-p)` where the row-keyed uniform is ≥ p, else 0.
    func dropoutMask(_ out: UnsafeMutablePointer<Float>, rows: Int, rowLength: Int, key: RandomKey, firstRow: Int, p: Float)
}

extension CPUBackend: RandomKernels {
    public func fillUniformRows(_ out: UnsafeMutablePointer<Float>, rows: Int, rowLength: Int, key: RandomKey, firstRow: Int) {
        parallelRows(rows, rowCost: rowLength * 8) { s, e in
            for r in s..<e {
                key.with(key.stream.0, UInt64(firstRow + r)).fillUniform(out + r * rowLength, count: rowLength, low: 0, high: 1)
            }
        }
    }

    public func dropoutMask(_ out: UnsafeMutablePointer<Float>, rows: Int, rowLength: Int, key: RandomKey, firstRow: Int, p: Float) {
        fillUniformRows(out, rows: rows, rowLength: rowLength, key: key, firstRow: firstRow)
        let scale = 1 / (1 - p)
        parallelFor(rows * rowLength) { s, e in for i in s..<e { out[i] = out[i] >= p ? scale : 0 } }
    }
}
