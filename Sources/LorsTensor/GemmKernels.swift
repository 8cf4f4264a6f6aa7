import CBLAS
import Foundation

/// Matrix products. Row-major; `batch` products with element strides between them.
public protocol GemmKernels {
    /// `C[b] = alpha * op(A[b]) * op(B[b]) + beta * C[b]` for `b in 0..<batch`, where op(A) is
    /// `m×k`, op(B) is `k×n`; a stride of 0 reuses the same matrix for every product.
    func gemm(transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int, alpha: Float,
              a: UnsafePointer<Float>, lda: Int, strideA: Int,
              b: UnsafePointer<Float>, ldb: Int, strideB: Int,
              beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int, strideC: Int, batch: Int)

    /// A two-level grid of products: item (o, i) uses `a + o·outerA + i·innerA` (likewise b, c) for
    /// `o in 0..<outer`, `i in 0..<inner` — e.g. (batch, head) pairs reading q/k/v straight out of a
    /// packed `[B, T, 3·D]` tensor with leading dimension 3·D, so attention needs no permute copies.
    func gemmGrid(transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int, alpha: Float,
                  a: UnsafePointer<Float>, lda: Int, outerA: Int, innerA: Int,
                  b: UnsafePointer<Float>, ldb: Int, outerB: Int, innerB: Int,
                  beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int, outerC: Int, innerC: Int,
                  outer: Int, inner: Int)
}

/// Products are split over threads only along the rows of C, at multiples of this many rows, so that every
/// element is computed by the same single-threaded OpenBLAS kernel code, over the same k-blocks, whatever the thread
/// count. In OpenBLAS's column-major view these rows are its N dimension; its kernels tile N in groups that divide 48
/// (Haswell/Zen: 24 columns per macro step; SkylakeX, Sandybridge and the SSE kernels: 4 to 16), so results are bit
/// for bit those of the unsplit product. A split along the columns of C (OpenBLAS's M) is never exact: OpenBLAS cuts
/// M into GEMM_P-sized panels whose boundaries depend on the whole extent.
public let gemmRowSplitAlignment = 48

/// Smallest m·n·k of one part of a split product. OpenBLAS's AVX-512 builds send small products with α = 1, β = 0
/// and no transposes (m·n·k < 28·512²) to a "direct" kernel whose sums over k are not blocked like the regular
/// kernel's; the regular path is kept for every part (and for the whole, see `gemmRegularPath`).
let gemmMinimumPartVolume = 28 * 512 * 512

/// The number of row parts a product of this shape is split into on `threads` threads (1: not split).
func gemmRowParts(m: Int, n: Int, k: Int, threads: Int) -> Int {
    guard threads > 1 else { return 1 }
    return Swift.max(1, Swift.min(threads, m / gemmRowSplitAlignment, (m * n * k) / gemmMinimumPartVolume))
}

extension CPUBackend: GemmKernels {
    public func gemm(transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int, alpha: Float,
                     a: UnsafePointer<Float>, lda: Int, strideA: Int,
                     b: UnsafePointer<Float>, ldb: Int, strideB: Int,
                     beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int, strideC: Int, batch: Int) {
        if m == 0 || n == 0 || batch == 0 { return }
        if k == 0 {
            for bi in 0..<batch {
                for i in 0..<m {
                    let row = c + bi * strideC + i * ldc
                    for j in 0..<n { row[j] = beta == 0 ? 0 : beta * row[j] }
                }
            }
            return
        }
        let threads = Threading.threads
        func item(_ bi: Int, rows lo: Int, _ hi: Int) {
            gemmRegularPath(transposeA: transposeA, transposeB: transposeB, m: hi - lo, n: n, k: k,
                            alpha: alpha, a: a + bi * strideA + (transposeA ? lo : lo * lda), lda: lda,
                            b: b + bi * strideB, ldb: ldb, beta: beta, c: c + bi * strideC + lo * ldc, ldc: ldc)
        }
        // Every part below is a single-threaded sgemm (OpenBLAS never threads a product itself, see `Threading`), and
        // the ways of cutting the work here do not change any element's bits (see `gemmRowSplitAlignment`).
        let parts = gemmRowParts(m: m, n: n, k: k, threads: threads)
        if batch >= threads || parts == 1 {
            // Many products (attention heads, per-image convolutions), or small ones: whole products spread over the
            // cores.
            let flops = Swift.max(1, 2 * m * n * k)
            parallelFor(batch, grain: Swift.max(1, 2_000_000 / flops)) { s, e in
                for bi in s..<e { item(bi, rows: 0, m) }
            }
            return
        }
        // Fewer large products than threads: each product split into row parts, one per core.
        for bi in 0..<batch {
            forEachThreadRange(m, threads: parts) { lo, hi in item(bi, rows: lo, hi) }
        }
    }

    public func gemmGrid(transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int, alpha: Float,
                         a: UnsafePointer<Float>, lda: Int, outerA: Int, innerA: Int,
                         b: UnsafePointer<Float>, ldb: Int, outerB: Int, innerB: Int,
                         beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int, outerC: Int, innerC: Int,
                         outer: Int, inner: Int) {
        let items = outer * inner
        if m == 0 || n == 0 || items == 0 { return }
        let ta = transposeA ? CblasTrans : CblasNoTrans
        let tb = transposeB ? CblasTrans : CblasNoTrans
        let flops = Swift.max(1, 2 * m * n * k)
        // One single-threaded sgemm per item, items spread over the cores (each is small).
        parallelFor(items, grain: Swift.max(1, 2_000_000 / flops)) { s, e in
            for item in s..<e {
                let o = item / inner, i = item % inner
                sgemm(ta, tb, Int32(m), Int32(n), Int32(k), alpha,
                            a + o * outerA + i * innerA, Int32(lda), b + o * outerB + i * innerB, Int32(ldb),
                            beta, c + o * outerC + i * innerC, Int32(ldc))
            }
        }
    }
}

/// Every matrix product of the engine goes through here: OpenBLAS's `cblas_sgemm` (row-major, single-threaded), counted
/// while `MatrixProductCounter` counts.
@inline(__always)
func sgemm(_ ta: CBLAS_TRANSPOSE, _ tb: CBLAS_TRANSPOSE, _ m: Int32, _ n: Int32, _ k: Int32, _ alpha: Float,
           _ a: UnsafePointer<Float>, _ lda: Int32, _ b: UnsafePointer<Float>, _ ldb: Int32, _ beta: Float,
           _ c: UnsafeMutablePointer<Float>, _ ldc: Int32) {
    if MatrixProductCounter.counting { MatrixProductCounter.add(2 * Int(m) * Int(n) * Int(k)) }
    cblas_sgemm(CblasRowMajor, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

/// Counts the floating-point operations (2·m·n·k per product) of the engine's matrix products, to check FLOP formulas
/// such as the benchmark's against the work actually done. Off unless `count` runs.
public enum MatrixProductCounter {
    nonisolated(unsafe) static var counting = false
    nonisolated(unsafe) private static var total = 0
    private static let lock = NSLock()

    static func add(_ flops: Int) {
        lock.lock()
        total += flops
        lock.unlock()
    }

    /// Runs `body` and returns the matrix-product FLOPs it performed.
    public static func count(_ body: () throws -> Void) rethrows -> Int {
        lock.lock()
        total = 0
        counting = true
        lock.unlock()
        defer { counting = false }
        try body()
        lock.lock()
        defer { lock.unlock() }
        return total
    }
}

/// `cblas_sgemm` kept off OpenBLAS's AVX-512 "direct" kernel: with α = 1, β = 0 and no transposes OpenBLAS may take
/// it for small products, and it sums over k differently from the regular kernel, so a part of a split product and
/// the whole would round differently. C is zeroed and β = 1 passed instead, which the regular kernel computes as
/// 0 + Σ: the same bits as β = 0.
@inline(__always)
func gemmRegularPath(transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int, alpha: Float, a: UnsafePointer<Float>,
                     lda: Int, b: UnsafePointer<Float>, ldb: Int, beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int) {
    var beta = beta
    if beta == 0 && alpha == 1 && !transposeA && !transposeB {
        for i in 0..<m { (c + i * ldc).update(repeating: 0, count: n) }
        beta = 1
    }
    sgemm(transposeA ? CblasTrans : CblasNoTrans, transposeB ? CblasTrans : CblasNoTrans, Int32(m), Int32(n), Int32(k),
          alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
}

/// Splits `0..<extent` into one contiguous range per thread (at most `threads` of them), each starting at a multiple
/// of `gemmRowSplitAlignment`, and runs `body(lo, hi)` for each on its own core.
func forEachThreadRange(_ extent: Int, threads: Int, _ body: (Int, Int) -> Void) {
    let align = gemmRowSplitAlignment
    let per = ((extent + threads - 1) / threads + align - 1) / align * align
    func run(_ part: Int) {
        let lo = part * per, hi = Swift.min(extent, lo + per)
        if lo < hi { body(lo, hi) }
    }
    if threads <= 1 { return run(0) }
    parallelFor(threads, grain: 1) { s, e in for part in s..<e { run(part) } }
}
