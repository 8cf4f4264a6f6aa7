import Foundation

/// Fused normalisation kernels: layer norm over the trailing `n` elements of each row and
/// group norm over `[N, C, S]` (S = product of the spatial dimensions).
///
/// Forward kernels save the per-row mean and reciprocal standard deviation
/// `rstd = 1 / sqrt(var + eps)` (biased variance, as PyTorch) for the backward kernels.
/// With `xhat = (x − mean) · rstd` and `dyhat = gy · w` (w = 1 without weight):
///   `dx = rstd · (dyhat − mean(dyhat) − xhat · mean(dyhat · xhat))` (means over the normalised set),
///   `dw = Σ gy · xhat`, `db = Σ gy` (sums over everything but the affine axis).
/// Weight/bias gradients are reduced in a fixed order that depends only on the shapes, so the
/// results are bitwise identical for any thread count.
public protocol NormKernels {
    /// Layer norm of `rows` rows of `n` contiguous elements:
    /// `out[r, j] = (x[r, j] − mean[r]) · rstd[r] · weight[j] + bias[j]` (weight/bias optional, `[n]`).
    /// Writes `mean` and `rstd` (`[rows]`).
    func layerNorm(x: UnsafePointer<Float>, weight: UnsafePointer<Float>?, bias: UnsafePointer<Float>?, rows: Int, n: Int,
                   eps: Float, out: UnsafeMutablePointer<Float>, mean: UnsafeMutablePointer<Float>, rstd: UnsafeMutablePointer<Float>)
    /// Backward of `layerNorm`: writes `gradIn` (`[rows, n]`) and, when non-nil, `gradWeight` / `gradBias` (`[n]`,
    /// overwritten) in one pass over `x` and `gradOut`.
    func layerNormBackward(x: UnsafePointer<Float>, weight: UnsafePointer<Float>?, mean: UnsafePointer<Float>,
                           rstd: UnsafePointer<Float>, gradOut: UnsafePointer<Float>, rows: Int, n: Int,
                           gradIn: UnsafeMutablePointer<Float>, gradWeight: UnsafeMutablePointer<Float>?,
                           gradBias: UnsafeMutablePointer<Float>?)
    /// Group norm of `x` `[batch, channels, spatial]` with `groups` groups of `channels / groups` consecutive channels:
    /// each (sample, group) is normalised over its `(channels / groups) · spatial` elements, then
    /// `out[b, c, s] = xhat · weight[c] + bias[c]` (weight/bias optional, `[channels]`).
    /// Writes `mean` and `rstd` (`[batch, groups]`).
    func groupNorm(x: UnsafePointer<Float>, weight: UnsafePointer<Float>?, bias: UnsafePointer<Float>?, batch: Int,
                   channels: Int, spatial: Int, groups: Int, eps: Float, out: UnsafeMutablePointer<Float>,
                   mean: UnsafeMutablePointer<Float>, rstd: UnsafeMutablePointer<Float>)
    /// Backward of `groupNorm`: writes `gradIn` and, when non-nil, `gradWeight` / `gradBias` (`[channels]`, overwritten).
    func groupNormBackward(x: UnsafePointer<Float>, weight: UnsafePointer<Float>?, mean: UnsafePointer<Float>,
                           rstd: UnsafePointer<Float>, gradOut: UnsafePointer<Float>, batch: Int, channels: Int,
                           spatial: Int, groups: Int, gradIn: UnsafeMutablePointer<Float>,
                           gradWeight: UnsafeMutablePointer<Float>?, gradBias: UnsafeMutablePointer<Float>?)
}

extension CPUBackend: NormKernels {
    /// Mean and rstd of `n` contiguous floats (two passes: mean, then centred sum of squares), each sum in vector
    /// lanes then across them: an order fixed by `n` alone (no dependence on threads), and no 4-cycle add latency
    /// per element (a scalar chain over 192 features cost more than the rest of the layer norm).
    @inline(__always)
    private func moments(_ p: UnsafePointer<Float>, _ n: Int, eps: Float) -> (Float, Float) {
        let width = FloatVector.scalarCount, raw = UnsafeRawPointer(p)
        var acc = FloatVector(), j = 0
        while j + width <= n { acc += raw.loadUnaligned(fromByteOffset: j * 4, as: FloatVector.self); j += width }
        var sum = acc.sum()
        while j < n { sum += p[j]; j += 1 }
        let m = sum / Float(n)
        let vm = FloatVector(repeating: m)
        acc = FloatVector()
        j = 0
        while j + width <= n {
            let d = raw.loadUnaligned(fromByteOffset: j * 4, as: FloatVector.self) - vm
            acc = muladd(d, d, acc)
            j += width
        }
        var sq = acc.sum()
        while j < n { let d = p[j] - m; sq = muladd(d, d, sq); j += 1 }
        return (m, 1 / (sq / Float(n) + eps).squareRoot())
    }

    /// Σ dy and Σ dy·xhat over one row, dy = g·w (w = 1 when nil), xhat = (x − m)·rs; vector lanes, then across.
    @inline(__always)
    private func rowGradientSums(_ x: UnsafePointer<Float>, _ g: UnsafePointer<Float>, _ w: UnsafePointer<Float>?, _ n: Int,
                                 _ m: Float, _ rs: Float) -> (Float, Float) {
        let width = FloatVector.scalarCount
        let rawX = UnsafeRawPointer(x), rawG = UnsafeRawPointer(g), rawW = w.map(UnsafeRawPointer.init)
        let vm = FloatVector(repeating: m), vrs = FloatVector(repeating: rs)
        var accDy = FloatVector(), accDyX = FloatVector(), j = 0
        while j + width <= n {
            var dy = rawG.loadUnaligned(fromByteOffset: j * 4, as: FloatVector.self)
            if let rawW { dy *= rawW.loadUnaligned(fromByteOffset: j * 4, as: FloatVector.self) }
            accDy += dy
            accDyX = muladd(dy, (rawX.loadUnaligned(fromByteOffset: j * 4, as: FloatVector.self) - vm) * vrs, accDyX)
            j += width
        }
        var sumDy = accDy.sum(), sumDyX = accDyX.sum()
        while j < n {
            let dy = g[j] * (w?[j] ?? 1)
            sumDy += dy
            sumDyX = muladd(dy, (x[j] - m) * rs, sumDyX)
            j += 1
        }
        return (sumDy, sumDyX)
    }

    public func layerNorm(x: UnsafePointer<Float>, weight: UnsafePointer<Float>?, bias: UnsafePointer<Float>?, rows: Int, n: Int,
                          eps: Float, out: UnsafeMutablePointer<Float>, mean: UnsafeMutablePointer<Float>,
                          rstd: UnsafeMutablePointer<Float>) {
        parallelRows(rows, rowCost: n * 3) { s, e in
            for r in s..<e {
                let xr = x + r * n, yr = out + r * n
                let (m, rs) = moments(xr, n, eps: eps)
                mean[r] = m
                rstd[r] = rs
                switch (weight, bias) {
                case let (w?, b?): for j in 0..<n { yr[j] = (xr[j] - m) * rs * w[j] + b[j] }
                case let (w?, nil): for j in 0..<n { yr[j] = (xr[j] - m) * rs * w[j] }
                case let (nil, b?): for j in 0..<n { yr[j] = (xr[j] - m) * rs + b[j] }
                case (nil, nil): for j in 0..<n { yr[j] = (xr[j] - m) * rs }
                }
            }
        }
    }

    public func layerNormBackward(x: UnsafePointer<Float>, weight: UnsafePointer<Float>?, mean: UnsafePointer<Float>,
                                  rstd: UnsafePointer<Float>, gradOut: UnsafePointer<Float>, rows: Int, n: Int,
                                  gradIn: UnsafeMutablePointer<Float>, gradWeight: UnsafeMutablePointer<Float>?,
                                  gradBias: UnsafeMutablePointer<Float>?) {
        let wantParams = gradWeight != nil || gradBias != nil
        // Rows are processed in a fixed number of fixed chunks (a function of `rows` only); each chunk
        // accumulates its own partial dw/db row, and the partials are summed in chunk order.
        let perChunk = wantParams ? Swift.max(1, (rows + 63) / 64) : 1
        let chunks = (rows + perChunk - 1) / perChunk
        let partial: UnsafeMutablePointer<Float>? = wantParams && chunks > 0 ? allocate(chunks * 2 * n) : nil
        defer { if let partial { release(partial, count: chunks * 2 * n) } }

        parallelFor(chunks, grain: Swift.max(1, 32_768 / Swift.max(1, perChunk * n * 6))) { cs, ce in
            for c in cs..<ce {
                let pw = partial.map { $0 + c * 2 * n }, pb = pw.map { $0 + n }
                if let pw, let pb { pw.update(repeating: 0, count: n); pb.update(repeating: 0, count: n) }
                let r0 = c * perChunk, r1 = Swift.min(rows, r0 + perChunk)
                for r in r0..<r1 {
                    let xr = x + r * n, gr = gradOut + r * n, dx = gradIn + r * n
                    let m = mean[r], rs = rstd[r]
                    // Σ dyhat and Σ dyhat·xhat over the row.
                    let (sumDy, sumDyX) = rowGradientSums(xr, gr, weight, n, m, rs)
                    let meanDy = sumDy / Float(n), meanDyX = sumDyX / Float(n)
                    if let w = weight {
                        for j in 0..<n { let xh = (xr[j] - m) * rs; dx[j] = rs * (gr[j] * w[j] - meanDy - xh * meanDyX) }
                    } else {
                        for j in 0..<n { let xh = (xr[j] - m) * rs; dx[j] = rs * (gr[j] - meanDy - xh * meanDyX) }
                    }
                    if let pw, let pb {
                        for j in 0..<n { pw[j] += gr[j] * (xr[j] - m) * rs; pb[j] += gr[j] }
                    }
                }
            }
        }
        guard let partial else { return }
        parallelFor(n, grain: 4096) { s, e in
            for j in s..<e {
                var dw: Float = 0, db: Float = 0
                for c in 0..<chunks { dw += partial[c * 2 * n + j]; db += partial[c * 2 * n + n + j] }
                gradWeight?[j] = dw
                gradBias?[j] = db
            }
        }
    }

    public func groupNorm(x: UnsafePointer<Float>, weight: UnsafePointer<Float>?, bias: UnsafePointer<Float>?, batch: Int,
                          channels: Int, spatial: Int, groups: Int, eps: Float, out: UnsafeMutablePointer<Float>,
                          mean: UnsafeMutablePointer<Float>, rstd: UnsafeMutablePointer<Float>) {
        let perGroup = channels / groups, len = perGroup * spatial
        parallelRows(batch * groups, rowCost: len * 3) { s, e in
            for r in s..<e {
                let xr = x + r * len, yr = out + r * len
                let (m, rs) = moments(xr, len, eps: eps)
                mean[r] = m
                rstd[r] = rs
                let c0 = (r % groups) * perGroup
                for k in 0..<perGroup {
                    let w = weight?[c0 + k] ?? 1, b = bias?[c0 + k] ?? 0
                    let xc = xr + k * spatial, yc = yr + k * spatial
                    for i in 0..<spatial { yc[i] = (xc[i] - m) * rs * w + b }
                }
            }
        }
    }

    public func groupNormBackward(x: UnsafePointer<Float>, weight: UnsafePointer<Float>?, mean: UnsafePointer<Float>,
                                  rstd: UnsafePointer<Float>, gradOut: UnsafePointer<Float>, batch: Int, channels: Int,
                                  spatial: Int, groups: Int, gradIn: UnsafeMutablePointer<Float>,
                                  gradWeight: UnsafeMutablePointer<Float>?, gradBias: UnsafeMutablePointer<Float>?) {
        let perGroup = channels / groups, len = perGroup * spatial
        // Per (sample, channel): Σ_s gy and Σ_s gy·xhat. They give both the dx row means and, summed
        // over samples in order, dw and db.
        let sums = allocate(2 * batch * channels)
        defer { release(sums, count: 2 * batch * channels) }
        let sumG = sums, sumGX = sums + batch * channels
        parallelRows(batch * groups, rowCost: len * 4) { s, e in
            for r in s..<e {
                let xr = x + r * len, gr = gradOut + r * len, dx = gradIn + r * len
                let m = mean[r], rs = rstd[r]
                let n = r / groups, c0 = (r % groups) * perGroup
                var sumDy: Float = 0, sumDyX: Float = 0
                for k in 0..<perGroup {
                    let xc = xr + k * spatial, gc = gr + k * spatial
                    var sg: Float = 0, sgx: Float = 0
                    for i in 0..<spatial { sg += gc[i]; sgx += gc[i] * (xc[i] - m) * rs }
                    sumG[n * channels + c0 + k] = sg
                    sumGX[n * channels + c0 + k] = sgx
                    let w = weight?[c0 + k] ?? 1
                    sumDy += w * sg
                    sumDyX += w * sgx
                }
                let meanDy = sumDy / Float(len), meanDyX = sumDyX / Float(len)
                for k in 0..<perGroup {
                    let w = weight?[c0 + k] ?? 1
                    let xc = xr + k * spatial, gc = gr + k * spatial, dc = dx + k * spatial
                    for i in 0..<spatial { let xh = (xc[i] - m) * rs; dc[i] = rs * (gc[i] * w - meanDy - xh * meanDyX) }
                }
            }
        }
        guard gradWeight != nil || gradBias != nil else { return }
        parallelFor(channels, grain: 1024) { s, e in
            for c in s..<e {
                var dw: Float = 0, db: Float = 0
                for n in 0..<batch { dw += sumGX[n * channels + c]; db += sumG[n * channels + c] }
                gradWeight?[c] = dw
                gradBias?[c] = db
            }
        }
    }
}
