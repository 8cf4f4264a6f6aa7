import CBLAS

/// Fully connected layers with their epilogues fused: the output is produced in row blocks that stay in cache while
/// the bias goes in (copied into the block, then the product accumulates onto it) and, for the MLP's first layer,
/// while GELU is applied; the backward of "GELU after a linear" is applied to the input gradient of the *next* linear
/// block by block. Saved: the bias broadcast pass over the whole output, the GELU pass re-reading the
/// pre-activation, and writing and re-reading the gradient at the GELU output.
public protocol LinearKernels {
    /// `out = x · weightᵀ + bias` for `rows` rows (x `[rows, inFeatures]`, weight `[outFeatures, inFeatures]`, bias
    /// `[outFeatures]` or nil); when `geluOut` is given, also `geluOut = GELU(out)` (out keeps the pre-activation).
    func linearForward(x: UnsafePointer<Float>, rows: Int, inFeatures: Int, weight: UnsafePointer<Float>,
                       bias: UnsafePointer<Float>?, outFeatures: Int, out: UnsafeMutablePointer<Float>,
                       geluOut: UnsafeMutablePointer<Float>?)
    /// `gradIn = (gradOut · weight) ⊙ GELU'(preActivation)`: the gradient at the pre-activation of a GELU whose output
    /// fed a linear layer (gradOut `[rows, outFeatures]`, weight `[outFeatures, inFeatures]`, preActivation and
    /// gradIn `[rows, inFeatures]`).
    func linearInputGradientThroughGELU(gradOut: UnsafePointer<Float>, rows: Int, outFeatures: Int,
                                        weight: UnsafePointer<Float>, inFeatures: Int,
                                        preActivation: UnsafePointer<Float>, gradIn: UnsafeMutablePointer<Float>)
}

extension CPUBackend: LinearKernels {
    public func linearForward(x: UnsafePointer<Float>, rows: Int, inFeatures: Int, weight: UnsafePointer<Float>,
                              bias: UnsafePointer<Float>?, outFeatures: Int, out: UnsafeMutablePointer<Float>,
                              geluOut: UnsafeMutablePointer<Float>?) {
        if rows == 0 || outFeatures == 0 { return }
        forEachRowBlock(rows: rows, rowFloats: outFeatures, flopsPerRow: 2 * inFeatures * outFeatures) { r0, r1 in
            let block = out + r0 * outFeatures, count = (r1 - r0) * outFeatures
            if let bias {
                for r in 0..<(r1 - r0) { (block + r * outFeatures).update(from: bias, count: outFeatures) }
            }
            if inFeatures > 0 {
                sgemm(CblasNoTrans, CblasTrans, Int32(r1 - r0), Int32(outFeatures), Int32(inFeatures), 1,
                            x + r0 * inFeatures, Int32(inFeatures), weight, Int32(inFeatures), bias == nil ? 0 : 1,
                            block, Int32(outFeatures))
            } else if bias == nil {
                block.update(repeating: 0, count: count)
            }
            if let geluOut { geluForwardLoop(block, geluOut + r0 * outFeatures, 0, count) }
        }
    }

    public func linearInputGradientThroughGELU(gradOut: UnsafePointer<Float>, rows: Int, outFeatures: Int,
                                               weight: UnsafePointer<Float>, inFeatures: Int,
                                               preActivation: UnsafePointer<Float>, gradIn: UnsafeMutablePointer<Float>) {
        if rows == 0 || inFeatures == 0 { return }
        forEachRowBlock(rows: rows, rowFloats: inFeatures, flopsPerRow: 2 * inFeatures * outFeatures) { r0, r1 in
            let block = gradIn + r0 * inFeatures, count = (r1 - r0) * inFeatures
            if outFeatures > 0 {
                gemmRegularPath(transposeA: false, transposeB: false, m: r1 - r0, n: inFeatures,
                                k: outFeatures, alpha: 1, a: gradOut + r0 * outFeatures, lda: outFeatures, b: weight,
                                ldb: inFeatures, beta: 0, c: block, ldc: inFeatures)
            } else {
                block.update(repeating: 0, count: count)
            }
            geluBackwardLoop(preActivation + r0 * inFeatures, block, block, 0, count)
        }
    }
}

/// Runs `body(r0, r1)` over row blocks of the output: each thread takes one contiguous range of rows (single-threaded
/// OpenBLAS inside), walked in blocks of about 1.5 MB of output so a block is still in cache for its epilogue.
/// Every output element is computed by one single-threaded sgemm over the full inner dimension, and blocks start at
/// multiples of `gemmRowSplitAlignment` rows, so the values do not depend on the thread count or on the block size
/// (see `gemmRowSplitAlignment` for why the row offsets must be multiples of 48).
func forEachRowBlock(rows: Int, rowFloats: Int, flopsPerRow: Int, _ body: (Int, Int) -> Void) {
    // 1.5 MB of output per block (L2 is 1–2 MB per core on current Xeons): CPU time per vit-tiny step, same binary,
    // alternating: 1232–1273 ms at 1.5 MB vs 1306–1495 ms at 768 KB (each block re-packs the weight) and
    // 1367–1372 ms with one block per thread (the output makes an extra trip to memory).
    let align = gemmRowSplitAlignment
    let blockRows = Swift.max(align, (393_216 / Swift.max(1, rowFloats)) / align * align)
    let threads = Swift.min(Threading.threads, Swift.max(1, rows * flopsPerRow / 4_000_000))
    forEachThreadRange(rows, threads: threads) { lo, hi in
        var r0 = lo
        while r0 < hi {
            let r1 = Swift.min(hi, r0 + blockRows)
            body(r0, r1)
            r0 = r1
        }
    }
}
