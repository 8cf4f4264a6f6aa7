import Foundation
import LorsTensor

/// Query-box geometry of AdaMixer on the host: boxes are `(x, y, z, r)` with centre `(x, y)`,
/// `z = log2 √(wh)` and `r = log2(h / w)`, so `w = 2^z · 2^(−r/2)` and `h = 2^z · 2^(r/2)`.
///
/// Boxes never carry gradients into the next stage (AdaMixer detaches them), so everything here
/// works on `[Float]` and returns constant tensors.
public enum BoxGeometry {
    /// `(x1, y1, x2, y2)` of one `(x, y, z, r)` box (`decode_box`).
    public static func decode(_ b: ArraySlice<Float>) -> (Float, Float, Float, Float) {
        let i = b.startIndex
        let scale = Float(pow(2.0, Double(b[i + 2])))
        let w = scale * Float(pow(2.0, Double(-0.5 * b[i + 3]))), h = scale * Float(pow(2.0, Double(0.5 * b[i + 3])))
        return (b[i] - 0.5 * w, b[i + 1] - 0.5 * h, b[i] + 0.5 * w, b[i + 1] + 0.5 * h)
    }

    /// Width and height of one box.
    public static func size(_ b: ArraySlice<Float>) -> (w: Float, h: Float) {
        let i = b.startIndex
        let scale = Float(pow(2.0, Double(b[i + 2])))
        return (scale * Float(pow(2.0, Double(-0.5 * b[i + 3]))), scale * Float(pow(2.0, Double(0.5 * b[i + 3]))))
    }

    /// `(x, y, z, r)` of a corner box `(x1, y1, x2, y2)`.
    public static func encode(x1: Float, y1: Float, x2: Float, y2: Float) -> [Float] {
        let w = x2 - x1, h = y2 - y1
        return [0.5 * (x1 + x2), 0.5 * (y1 + y2), log2((w * h).squareRoot()), log2(h / w)]
    }

    /// `log(IoF(i, j) + 1e-7)` for every pair of queries: xyzr `[B, N, 4]` → `[B, 1, N, N]`, where
    /// `IoF(i, j) = area(box_i ∩ box_j) / area(box_i)` (mmdet `bbox_overlaps(mode="iof")`, area clamped at 1e-6).
    public static func logIoF(_ xyzr: Tensor) -> Tensor {
        precondition(xyzr.rank == 3 && xyzr.shape[2] == 4, "logIoF: boxes \(xyzr.shape) must be [B, N, 4]")
        let (b, n) = (xyzr.shape[0], xyzr.shape[1])
        let v = xyzr.toArray()
        var out = [Float](repeating: 0, count: b * n * n)
        for s in 0..<b {
            let boxes = (0..<n).map { decode(v[(s * n + $0) * 4..<(s * n + $0) * 4 + 4]) }
            for i in 0..<n {
                let bi = boxes[i]
                let area = Swift.max((bi.2 - bi.0) * (bi.3 - bi.1), 1e-6)
                for j in 0..<n {
                    let bj = boxes[j]
                    let iw = Swift.max(Swift.min(bi.2, bj.2) - Swift.max(bi.0, bj.0), 0)
                    let ih = Swift.max(Swift.min(bi.3, bj.3) - Swift.max(bi.1, bj.1), 0)
                    out[(s * n + i) * n + j] = Foundation.log(iw * ih / area + 1e-7)
                }
            }
        }
        return Tensor(out, shape: [b, 1, n, n])
    }

    /// Sinusoidal code of the boxes: xyzr `[B, N, 4]` → `[B, N, 4·F]` with `F = features` per coordinate
    /// (AdaMixer's `position_embedding`): the coordinates are divided by (1000, 1000, 1, 1); for coordinate c
    /// and j < F/2, feature `c·F + 2j` is `sin(v_c / T^(2j/F))` and `c·F + 2j + 1` is `cos(v_c / T^(2j/F))`.
    public static func positionalEncoding(_ xyzr: Tensor, features: Int, temperature: Double = 10000) -> Tensor {
        precondition(xyzr.rank == 3 && xyzr.shape[2] == 4, "positionalEncoding: boxes \(xyzr.shape) must be [B, N, 4]")
        precondition(features % 2 == 0, "positionalEncoding: \(features) features per coordinate must be even")
        let rows = xyzr.shape[0] * xyzr.shape[1]
        let v = xyzr.toArray()
        let divisors: [Float] = [1000, 1000, 1, 1]
        let dims = (0..<features / 2).map { Float(pow(temperature, Double(2 * $0) / Double(features))) }
        var out = [Float](repeating: 0, count: rows * 4 * features)
        for r in 0..<rows {
            for c in 0..<4 {
                let x = v[r * 4 + c] / divisors[c]
                for j in 0..<features / 2 {
                    let a = x / dims[j]
                    out[(r * 4 + c) * features + 2 * j] = sinf(a)
                    out[(r * 4 + c) * features + 2 * j + 1] = cosf(a)
                }
            }
        }
        return Tensor(out, shape: [xyzr.shape[0], xyzr.shape[1], 4 * features])
    }

    /// Corner boxes `(x1, y1, x2, y2)` of `(x, y, z, r)` boxes `[..., 4]`, differentiable (AdaMixer's `decode_box` on the
    /// regression head's output): `w = 2^(z − r/2)`, `h = 2^(z + r/2)`, corners at the centre ∓ half the size.
    public static func corners(_ xyzr: Tensor) -> Tensor {
        let last = xyzr.rank - 1
        precondition(xyzr.shape[last] == 4, "corners: boxes \(xyzr.shape) must end in 4")
        let x = xyzr.slice(axis: last, 0..<1), y = xyzr.slice(axis: last, 1..<2)
        let z = xyzr.slice(axis: last, 2..<3), r = xyzr.slice(axis: last, 3..<4)
        let ln2 = Float(M_LN2)
        let halfW = ((z - r * 0.5) * ln2).exp() * 0.5, halfH = ((z + r * 0.5) * ln2).exp() * 0.5
        return Tensor.concat([x - halfW, y - halfH, x + halfW, y + halfH], axis: last)
    }

    /// Box refinement (`refine_xyzr`): `x, y += Δ · 2^z`, `z, r += Δ`. `xyzr [B, N, 4]` is a constant
    /// (detached); the result carries the gradient of `delta [B, N, 4]`.
    public static func refine(_ xyzr: Tensor, delta: Tensor) -> Tensor {
        precondition(xyzr.shape == delta.shape && xyzr.shape.last == 4, "refine: boxes \(xyzr.shape) and deltas \(delta.shape)")
        let v = xyzr.toArray()
        var scale = [Float](repeating: 1, count: v.count)
        for r in 0..<(v.count / 4) {
            let s = Float(pow(2.0, Double(v[r * 4 + 2])))
            scale[r * 4] = s
            scale[r * 4 + 1] = s
        }
        return xyzr.detached() + delta * Tensor(scale, shape: xyzr.shape)
    }
}
