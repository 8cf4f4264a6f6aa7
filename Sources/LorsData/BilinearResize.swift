import LorsImage

/// Bilinear resizing of 8-bit images with the arithmetic of OpenCV's `cv2.resize(src, (w, h),
/// interpolation=cv2.INTER_LINEAR)` (resizeGeneric_ with HResizeLinear / VResizeLinear for `uchar`):
///
/// - source coordinate of destination pixel `d`: `f = float((d + 0.5) · (src / dst) − 0.5)` (computed in double,
///   rounded to float), `s = floor(f)`, `f −= s`; `s < 0` → `s = 0, f = 0`; `s ≥ src − 1` → `s = src − 1, f = 0`
///   (border replicate);
/// - weights `round(2048·(1 − f))` and `round(2048·f)` (INTER_RESIZE_COEF_BITS = 11, saturate_cast<short>);
/// - horizontal pass exact in int32: `S[s]·a0 + S[s+1]·a1`;
/// - vertical pass: OpenCV's x86 SIMD kernel (VResizeLinearVec_32s8u, 128-bit lanes) on the first elements of each
///   row, `((r0 >> 4)·b0 >> 16) + ((r1 >> 4)·b1 >> 16)` rounded by `(+2) >> 2`, and the scalar
///   `(r0·b0 + r1·b1 + 2^21) >> 22` on the tail that the SIMD loops leave, saturated to 0…255.
public enum BilinearResize {
    private static let coefficientScale: Float = 2048

    /// The per-destination-coordinate source index and fixed-point weights along one axis.
    static func taps(source: Int, destination: Int) -> (index: [Int], w0: [Int32], w1: [Int32]) {
        let scale = Double(source) / Double(destination)
        var index = [Int](repeating: 0, count: destination)
        var w0 = [Int32](repeating: 0, count: destination), w1 = [Int32](repeating: 0, count: destination)
        for d in 0..<destination {
            var f = Float((Double(d) + 0.5) * scale - 0.5)
            var s = Int(f.rounded(.down))
            f -= Float(s)
            if s < 0 { s = 0; f = 0 }
            if s >= source - 1 { s = source - 1; f = 0 }
            index[d] = s
            w0[d] = Int32(((1 - f) * coefficientScale).rounded(.toNearestOrEven))
            w1[d] = Int32((f * coefficientScale).rounded(.toNearestOrEven))
        }
        return (index, w0, w1)
    }

    /// `image` resized to `width`×`height` (both positive); the same image when the size is unchanged.
    public static func resize(_ image: ByteImage, width: Int, height: Int) -> ByteImage {
        precondition(width > 0 && height > 0, "resize needs a positive size")
        if width == image.width && height == image.height { return image }
        let c = image.channels, sw = image.width, sh = image.height
        let xt = taps(source: sw, destination: width), yt = taps(source: sh, destination: height)
        let rowLength = width * c
        // The elements of a row the SIMD loops cover: 16 at a time while x <= n - 16, then 8 while x < n - 8.
        var simdEnd = 0
        while simdEnd <= rowLength - 16 { simdEnd += 16 }
        while simdEnd < rowLength - 8 { simdEnd += 8 }
        var out = [UInt8](repeating: 0, count: rowLength * height)
        // Horizontally resized source rows, cached by source row index (two live at a time).
        var rowA = [Int32](repeating: 0, count: rowLength), rowB = rowA
        var indexA = -1, indexB = -1
        image.pixels.withUnsafeBufferPointer { src in
            func horizontal(_ sy: Int, into row: inout [Int32]) {
                let base = sy * sw * c
                row.withUnsafeMutableBufferPointer { r in
                    for dx in 0..<width {
                        let s0 = xt.index[dx], s1 = min(s0 + 1, sw - 1)
                        let a0 = xt.w0[dx], a1 = xt.w1[dx]
                        for k in 0..<c {
                            r[dx * c + k] = Int32(src[base + s0 * c + k]) * a0 + Int32(src[base + s1 * c + k]) * a1
                        }
                    }
                }
            }
            out.withUnsafeMutableBufferPointer { dst in
                for dy in 0..<height {
                    let y0 = yt.index[dy], y1 = min(y0 + 1, sh - 1)
                    // Keep the cached rows when they are the ones needed (in either slot).
                    if indexA != y0 {
                        if indexB == y0 { swap(&rowA, &rowB); swap(&indexA, &indexB) } else { horizontal(y0, into: &rowA); indexA = y0 }
                    }
                    if indexB != y1 {
                        if y1 == indexA { rowB = rowA } else { horizontal(y1, into: &rowB) }
                        indexB = y1
                    }
                    let b0 = yt.w0[dy], b1 = yt.w1[dy]
                    let o = dy * rowLength
                    rowA.withUnsafeBufferPointer { r0 in
                        rowB.withUnsafeBufferPointer { r1 in
                            for x in 0..<simdEnd {
                                let t0 = ((r0[x] >> 4) &* b0) >> 16, t1 = ((r1[x] >> 4) &* b1) >> 16
                                dst[o + x] = UInt8(clamping: (t0 + t1 + 2) >> 2)
                            }
                            for x in simdEnd..<rowLength {
                                dst[o + x] = UInt8(clamping: (r0[x] &* b0 &+ r1[x] &* b1 &+ (1 << 21)) >> 22)
                            }
                        }
                    }
                }
            }
        }
        return ByteImage(width: width, height: height, channels: c, pixels: out)
    }
}
