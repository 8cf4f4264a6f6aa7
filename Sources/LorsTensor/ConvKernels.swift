/// Sliding-window geometry of a 2-D convolution or pooling over `[.., H, W]` planes.
///
/// `outH = (H + 2·padH − dilationH·(kernelH − 1) − 1) / strideH + 1` (floor), likewise for W;
/// output pixel `(oy, ox)` reads input pixels `(oy·strideH − padH + ki·dilationH,
/// ox·strideW − padW + kj·dilationW)` for `ki in 0..<kernelH`, `kj in 0..<kernelW`.
public struct WindowGeometry: Sendable, Equatable {
    /// Input plane height and width.
    public var inH: Int, inW: Int
    /// Window size.
    public var kernelH: Int, kernelW: Int
    /// Step between windows.
    public var strideH: Int, strideW: Int
    /// Implicit padding on each side.
    public var padH: Int, padW: Int
    /// Spacing of the window taps.
    public var dilationH: Int, dilationW: Int

    /// Geometry of `kernel` windows over an `inH × inW` plane; traps on non-positive sizes or an empty output.
    public init(inH: Int, inW: Int, kernel: (Int, Int), stride: (Int, Int), padding: (Int, Int), dilation: (Int, Int)) {
        precondition(kernel.0 > 0 && kernel.1 > 0, "window kernel \(kernel) must be positive")
        precondition(stride.0 > 0 && stride.1 > 0, "window stride \(stride) must be positive")
        precondition(padding.0 >= 0 && padding.1 >= 0, "window padding \(padding) must be non-negative")
        precondition(dilation.0 > 0 && dilation.1 > 0, "window dilation \(dilation) must be positive")
        self.inH = inH; self.inW = inW
        kernelH = kernel.0; kernelW = kernel.1
        strideH = stride.0; strideW = stride.1
        padH = padding.0; padW = padding.1
        dilationH = dilation.0; dilationW = dilation.1
        precondition(outH > 0 && outW > 0,
                     "window \(kernel) (dilation \(dilation), padding \(padding)) does not fit the \(inH)×\(inW) input")
    }

    /// Output plane height.
    public var outH: Int { (inH + 2 * padH - dilationH * (kernelH - 1) - 1) / strideH + 1 }
    /// Output plane width.
    public var outW: Int { (inW + 2 * padW - dilationW * (kernelW - 1) - 1) / strideW + 1 }
    /// Taps per window (`kernelH · kernelW`).
    public var taps: Int { kernelH * kernelW }

    /// Range of output columns `ox` whose tap `kj` lands inside `0..<inW`.
    @inline(__always) func validColumns(tap kj: Int) -> Range<Int> {
        let shift = kj * dilationW - padW  // ix = ox·strideW + shift
        let lo = shift >= 0 ? 0 : (-shift + strideW - 1) / strideW
        let hiExclusive = inW - shift <= 0 ? 0 : (inW - shift + strideW - 1) / strideW
        let hi = Swift.min(outW, hiExclusive)
        return lo < hi ? lo..<hi : lo..<lo
    }
}

/// Convolution and pooling kernels on NCHW planes.
///
/// The column buffer of an image is `[C·kernelH·kernelW, outH·outW]`: row `(c, ki, kj)` holds tap
/// `(ki, kj)` of channel `c` for every output pixel (zero where the tap falls in the padding), so a
/// convolution is `weight [O, C·kh·kw] · col`.
public protocol ConvKernels {
    /// im2col of `images` consecutive images `[images, channels, inH, inW]` into
    /// `col [images, channels·taps, outH·outW]`.
    func im2col(input: UnsafePointer<Float>, images: Int, channels: Int, geometry: WindowGeometry,
                col: UnsafeMutablePointer<Float>)
    /// The adjoint of `im2col`: `image[n, c, iy, ix] (+)= Σ col[n, (c, ki, kj), (oy, ox)]` over all taps
    /// that read `(iy, ix)`. Overwrites `image` unless `accumulate`.
    func col2im(col: UnsafePointer<Float>, images: Int, channels: Int, geometry: WindowGeometry,
                image: UnsafeMutablePointer<Float>, accumulate: Bool)
    /// Max pooling of `planes` planes `[planes, inH, inW]` into `out [planes, outH, outW]`; padding reads
    /// as −∞. `indices` receives, per output, the plane-local flat index `iy·inW + ix` of the first
    /// maximum in scan order (NaN counts as maximal), stored as an exact float.
    func maxPool2d(input: UnsafePointer<Float>, planes: Int, geometry: WindowGeometry,
                   out: UnsafeMutablePointer<Float>, indices: UnsafeMutablePointer<Float>)
    /// `gradIn[p, indices[p, o]] += gradOut[p, o]` into a zeroed `gradIn [planes, inH, inW]`.
    func maxPool2dBackward(gradOut: UnsafePointer<Float>, indices: UnsafePointer<Float>, planes: Int,
                           geometry: WindowGeometry, gradIn: UnsafeMutablePointer<Float>)
}

extension CPUBackend: ConvKernels {
    public func im2col(input: UnsafePointer<Float>, images: Int, channels: Int, geometry g: WindowGeometry,
                       col: UnsafeMutablePointer<Float>) {
        let outH = g.outH, outW = g.outW, L = outH * outW, plane = g.inH * g.inW
        let rows = images * channels * g.taps
        // One row (n, c, ki, kj) per work item: every element written by exactly one thread.
        parallelRows(rows, rowCost: L) { s, e in
            for r in s..<e {
                let tap = r % g.taps, nc = r / g.taps
                let ki = tap / g.kernelW, kj = tap % g.kernelW
                let src = input + nc * plane
                let dst = col + r * L
                let cols = g.validColumns(tap: kj)
                let shiftW = kj * g.dilationW - g.padW
                for oy in 0..<outH {
                    let iy = oy * g.strideH - g.padH + ki * g.dilationH
                    let d = dst + oy * outW
                    if iy < 0 || iy >= g.inH || cols.isEmpty {
                        d.update(repeating: 0, count: outW)
                        continue
                    }
                    if cols.lowerBound > 0 { d.update(repeating: 0, count: cols.lowerBound) }
                    let rowSrc = src + iy * g.inW + shiftW
                    if g.strideW == 1 {
                        (d + cols.lowerBound).update(from: rowSrc + cols.lowerBound, count: cols.count)
                    } else {
                        for ox in cols { d[ox] = rowSrc[ox * g.strideW] }
                    }
                    if cols.upperBound < outW { (d + cols.upperBound).update(repeating: 0, count: outW - cols.upperBound) }
                }
            }
        }
    }

    public func col2im(col: UnsafePointer<Float>, images: Int, channels: Int, geometry g: WindowGeometry,
                       image: UnsafeMutablePointer<Float>, accumulate: Bool) {
        let outH = g.outH, outW = g.outW, L = outH * outW, plane = g.inH * g.inW
        // One (n, c) plane per work item, taps summed in a fixed order: deterministic for any thread count.
        parallelRows(images * channels, rowCost: g.taps * L) { s, e in
            for p in s..<e {
                let dst = image + p * plane
                if !accumulate { dst.update(repeating: 0, count: plane) }
                for tap in 0..<g.taps {
                    let ki = tap / g.kernelW, kj = tap % g.kernelW
                    let src = col + (p * g.taps + tap) * L
                    let cols = g.validColumns(tap: kj)
                    if cols.isEmpty { continue }
                    let shiftW = kj * g.dilationW - g.padW
                    for oy in 0..<outH {
                        let iy = oy * g.strideH - g.padH + ki * g.dilationH
                        if iy < 0 || iy >= g.inH { continue }
                        let rowDst = dst + iy * g.inW + shiftW
                        let rowSrc = src + oy * outW
                        if g.strideW == 1 {
                            for ox in cols { rowDst[ox] += rowSrc[ox] }
                        } else {
                            for ox in cols { rowDst[ox * g.strideW] += rowSrc[ox] }
                        }
                    }
                }
            }
        }
    }

    public func maxPool2d(input: UnsafePointer<Float>, planes: Int, geometry g: WindowGeometry,
                          out: UnsafeMutablePointer<Float>, indices: UnsafeMutablePointer<Float>) {
        let outH = g.outH, outW = g.outW, L = outH * outW, plane = g.inH * g.inW
        parallelRows(planes, rowCost: L * g.taps) { s, e in
            for p in s..<e {
                let src = input + p * plane
                for oy in 0..<outH {
                    var iy0 = oy * g.strideH - g.padH
                    let iy1 = Swift.min(iy0 + (g.kernelH - 1) * g.dilationH + 1, g.inH)
                    while iy0 < 0 { iy0 += g.dilationH }
                    for ox in 0..<outW {
                        var ix0 = ox * g.strideW - g.padW
                        let ix1 = Swift.min(ix0 + (g.kernelW - 1) * g.dilationW + 1, g.inW)
                        while ix0 < 0 { ix0 += g.dilationW }
                        // As PyTorch: start at −∞ with the first in-bounds tap as index; a later tap wins
                        // only if strictly greater (or NaN), so ties go to the first in scan order.
                        var best = -Float.infinity
                        var bestIndex = iy0 * g.inW + ix0
                        var iy = iy0
                        while iy < iy1 {
                            var ix = ix0
                            while ix < ix1 {
                                let v = src[iy * g.inW + ix]
                                if v > best || v.isNaN { best = v; bestIndex = iy * g.inW + ix }
                                ix += g.dilationW
                            }
                            iy += g.dilationH
                        }
                        out[p * L + oy * outW + ox] = best
                        indices[p * L + oy * outW + ox] = Float(bestIndex)
                    }
                }
            }
        }
    }

    public func maxPool2dBackward(gradOut: UnsafePointer<Float>, indices: UnsafePointer<Float>, planes: Int,
                                  geometry g: WindowGeometry, gradIn: UnsafeMutablePointer<Float>) {
        let L = g.outH * g.outW, plane = g.inH * g.inW
        // One plane per work item; overlapping windows add in output order.
        parallelRows(planes, rowCost: L + plane) { s, e in
            for p in s..<e {
                let dst = gradIn + p * plane
                dst.update(repeating: 0, count: plane)
                let gp = gradOut + p * L, ip = indices + p * L
                for o in 0..<L { dst[Int(ip[o])] += gp[o] }
            }
        }
    }
}
