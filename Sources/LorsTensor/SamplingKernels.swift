import Foundation

/// Bilinear grid sampling (`torch.nn.functional.grid_sample`, `mode="bilinear"`,
/// `padding_mode="zeros"`, `align_corners=False`).
///
/// `input [N, C, inH, inW]`, `grid [N, outH, outW, 2]` holding normalised `(x, y)` in [−1, 1]
/// (−1/+1 are the outer edges of the border pixels), `out [N, C, outH, outW]`. A point maps to
/// pixel coordinates `ix = ((x + 1)·inW − 1) / 2`, `iy = ((y + 1)·inH − 1) / 2` and reads its four
/// neighbours with bilinear weights; neighbours outside the image read as zero.
public protocol SamplingKernels {
    /// Forward sampling.
    func gridSample(input: UnsafePointer<Float>, grid: UnsafePointer<Float>, batch: Int, channels: Int,
                    inH: Int, inW: Int, outH: Int, outW: Int, out: UnsafeMutablePointer<Float>)
    /// Gradients: `gradInput` (overwritten, `[N, C, inH, inW]`) receives the bilinear scatter of
    /// `gradOut`; `gradGrid` (overwritten, `[N, outH, outW, 2]`) receives `∂L/∂(x, y)`. Either may be nil.
    func gridSampleBackward(input: UnsafePointer<Float>, grid: UnsafePointer<Float>, gradOut: UnsafePointer<Float>,
                            batch: Int, channels: Int, inH: Int, inW: Int, outH: Int, outW: Int,
                            gradInput: UnsafeMutablePointer<Float>?, gradGrid: UnsafeMutablePointer<Float>?)
}

/// Four bilinear taps of one sample point: plane offsets and weights; an out-of-image tap has
/// weight 0 and offset 0 (so it may be read harmlessly but contributes nothing).
struct BilinearTaps {
    /// Pixel coordinates of the point.
    var ix: Float, iy: Float
    /// Integer corner `(x0, y0) = floor(ix, iy)` as floats (exact), for the grid gradient.
    var x0: Float, y0: Float
    /// Offsets `y·inW + x` of the nw, ne, sw, se corners.
    var nw = 0, ne = 0, sw = 0, se = 0
    /// Whether each corner lies inside the image.
    var inNW = false, inNE = false, inSW = false, inSE = false
    /// Bilinear weights (zeroed for corners outside the image).
    var wNW: Float = 0, wNE: Float = 0, wSW: Float = 0, wSE: Float = 0

    @inline(__always) init(x: Float, y: Float, inH: Int, inW: Int) {
        ix = ((x + 1) * Float(inW) - 1) / 2
        iy = ((y + 1) * Float(inH) - 1) / 2
        x0 = floorf(ix)
        y0 = floorf(iy)
        // Compare in float before converting: NaN/∞ or far-away points are simply outside.
        let xIn0 = x0 >= 0 && x0 <= Float(inW - 1), xIn1 = x0 >= -1 && x0 <= Float(inW - 2)
        let yIn0 = y0 >= 0 && y0 <= Float(inH - 1), yIn1 = y0 >= -1 && y0 <= Float(inH - 2)
        let fx = ix - x0, fy = iy - y0  // in [0, 1)
        let gx = (x0 + 1) - ix, gy = (y0 + 1) - iy
        let xi = (xIn0 || xIn1) ? Int(x0) : 0, yi = (yIn0 || yIn1) ? Int(y0) : 0
        if yIn0 && xIn0 { inNW = true; nw = yi * inW + xi; wNW = gx * gy }
        if yIn0 && xIn1 { inNE = true; ne = yi * inW + xi + 1; wNE = fx * gy }
        if yIn1 && xIn0 { inSW = true; sw = (yi + 1) * inW + xi; wSW = gx * fy }
        if yIn1 && xIn1 { inSE = true; se = (yi + 1) * inW + xi + 1; wSE = fx * fy }
    }
}

extension CPUBackend: SamplingKernels {
    public func gridSample(input: UnsafePointer<Float>, grid: UnsafePointer<Float>, batch: Int, channels: Int,
                           inH: Int, inW: Int, outH: Int, outW: Int, out: UnsafeMutablePointer<Float>) {
        let P = outH * outW, plane = inH * inW
        // One sample point per work item: taps computed once, then every channel.
        parallelRows(batch * P, rowCost: channels * 8 + 16) { s, e in
            for r in s..<e {
                let n = r / P, p = r % P
                let t = BilinearTaps(x: grid[2 * r], y: grid[2 * r + 1], inH: inH, inW: inW)
                var src = input + n * channels * plane
                var dst = out + n * channels * P + p
                for _ in 0..<channels {
                    var v: Float = 0
                    if t.inNW { v += src[t.nw] * t.wNW }
                    if t.inNE { v += src[t.ne] * t.wNE }
                    if t.inSW { v += src[t.sw] * t.wSW }
                    if t.inSE { v += src[t.se] * t.wSE }
                    dst.pointee = v
                    src += plane
                    dst += P
                }
            }
        }
    }

    public func gridSampleBackward(input: UnsafePointer<Float>, grid: UnsafePointer<Float>, gradOut: UnsafePointer<Float>,
                                   batch: Int, channels: Int, inH: Int, inW: Int, outH: Int, outW: Int,
                                   gradInput: UnsafeMutablePointer<Float>?, gradGrid: UnsafeMutablePointer<Float>?) {
        let P = outH * outW, plane = inH * inW
        if let gradInput {
            // Scatter, parallel over (n, c) planes: each input-gradient plane is written by one thread,
            // points added in order, so the result does not depend on the thread count. A thread's chunk
            // of planes is walked point-major so the taps of a point are computed once per chunk.
            parallelRows(batch * channels, rowCost: P * 8 + plane) { s, e in
                (gradInput + s * plane).update(repeating: 0, count: (e - s) * plane)
                var first = s
                while first < e {
                    let n = first / channels
                    let last = Swift.min(e, (n + 1) * channels)  // planes first..<last share image n
                    for p in 0..<P {
                        let r = n * P + p
                        let t = BilinearTaps(x: grid[2 * r], y: grid[2 * r + 1], inH: inH, inW: inW)
                        for q in first..<last {
                            let g = gradOut[q * P + p]
                            let dst = gradInput + q * plane
                            if t.inNW { dst[t.nw] += t.wNW * g }
                            if t.inNE { dst[t.ne] += t.wNE * g }
                            if t.inSW { dst[t.sw] += t.wSW * g }
                            if t.inSE { dst[t.se] += t.wSE * g }
                        }
                    }
                    first = last
                }
            }
        }
        if let gradGrid {
            // Gather, one sample point per work item, channels summed in order.
            let sx = Float(inW) / 2, sy = Float(inH) / 2  // d ix / d x, d iy / d y
            parallelRows(batch * P, rowCost: channels * 12 + 16) { s, e in
                for r in s..<e {
                    let n = r / P, p = r % P
                    let t = BilinearTaps(x: grid[2 * r], y: grid[2 * r + 1], inH: inH, inW: inW)
                    let fx = t.ix - t.x0, fy = t.iy - t.y0, gx = (t.x0 + 1) - t.ix, gy = (t.y0 + 1) - t.iy
                    var dix: Float = 0, diy: Float = 0
                    var src = input + n * channels * plane
                    var gp = gradOut + n * channels * P + p
                    for _ in 0..<channels {
                        let g = gp.pointee
                        if t.inNW { let v = src[t.nw] * g; dix -= v * gy; diy -= v * gx }
                        if t.inNE { let v = src[t.ne] * g; dix += v * gy; diy -= v * fx }
                        if t.inSW { let v = src[t.sw] * g; dix -= v * fy; diy += v * gx }
                        if t.inSE { let v = src[t.se] * g; dix += v * fy; diy += v * fx }
                        src += plane
                        gp += P
                    }
                    gradGrid[2 * r] = dix * sx
                    gradGrid[2 * r + 1] = diy * sy
                }
            }
        }
    }
}
