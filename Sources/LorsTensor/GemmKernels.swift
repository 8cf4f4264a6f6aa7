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

/// How a large single product uses several threads: 1 (default) splits C into one block per thread, each a
/// single-threaded sgemm; 0 leaves the threading to OpenBLAS (`LORS_GEMM_SPLIT=0`). Side by side on the vit-tiny
/// step the split was 4–8% faster (OpenBLAS's threads synchronise inside every product and spin in sched_yield).
let gemmSplitMode = Int(ProcessInfo.processInfo.environment["LORS_GEMM_SPLIT"] ?? "1") ?? 1

extension CPUBackend: GemmKernels {
    public func gemm(transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int, alpha: Float,
                     a: UnsafePointer<Float>, lda: Int, strideA: Int,
                     b: UnsafePointer<Float>, ldb: Int, strideB: Int,
                     beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int, strideC: Int, batch: Int) {
        if m == 0 || n == 0 || batch == 0 { return }
        let ta = transposeA ? CblasTrans : CblasNoTrans
        let tb = transposeB ? CblasTrans : CblasNoTrans
        if k == 0 {
            for bi in 0..<batch {
                for i in 0..<m {
                    let row = c + bi * strideC + i * ldc
                    for j in 0..<n { row[j] = beta == 0 ? 0 : beta * row[j] }
                }
            }
            return
        }
        let flops = 2 * m * n * k
        if batch > 1 && flops < 4_000_000 && Threading.threads > 1 {
            // Many small products (attention heads): one single-threaded sgemm per item, items
            // spread over the cores. OpenBLAS would otherwise run each small product on one
            // core anyway and pay its thread hand-off on every call.
            parallelForSingleThreadedBLAS(batch, grain: max(1, 2_000_000 / flops)) { s, e in
                for bi in s..<e {
                    cblas_sgemm(CblasRowMajor, ta, tb, Int32(m), Int32(n), Int32(k), alpha,
                                a + bi * strideA, Int32(lda), b + bi * strideB, Int32(ldb),
                                beta, c + bi * strideC, Int32(ldc))
                }
            }
            return
        }
        let threads = Threading.threads
        if batch == 1 && threads > 1 && gemmSplitMode > 0 && flops >= 8_000_000 && Swift.max(m, n) >= 32 * threads {
            // One product split into `threads` independent blocks of C (along its longer side, 16-aligned), each a
            // single-threaded sgemm on its own core: no synchronisation inside OpenBLAS between the cores.
            let alongM = m >= n
            let extent = alongM ? m : n
            forEachThreadRange(extent, threads: threads) { lo, hi in
                if alongM {
                    cblas_sgemm(CblasRowMajor, ta, tb, Int32(hi - lo), Int32(n), Int32(k), alpha,
                                transposeA ? a + lo : a + lo * lda, Int32(lda), b, Int32(ldb), beta, c + lo * ldc, Int32(ldc))
                } else {
                    cblas_sgemm(CblasRowMajor, ta, tb, Int32(m), Int32(hi - lo), Int32(k), alpha,
                                a, Int32(lda), transposeB ? b + lo * ldb : b + lo, Int32(ldb), beta, c + lo, Int32(ldc))
                }
            }
            return
        }
        for bi in 0..<batch {
            cblas_sgemm(CblasRowMajor, ta, tb, Int32(m), Int32(n), Int32(k), alpha,
                        a + bi * strideA, Int32(lda), b + bi * strideB, Int32(ldb),
                        beta, c + bi * strideC, Int32(ldc))
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
        parallelForSingleThreadedBLAS(items, grain: Swift.max(1, 2_000_000 / flops)) { s, e in
            for item in s..<e {
                let o = item / inner, i = item % inner
                cblas_sgemm(CblasRowMajor, ta, tb, Int32(m), Int32(n), Int32(k), alpha,
                            a + o * outerA + i * innerA, Int32(lda), b + o * outerB + i * innerB, Int32(ldb),
                            beta, c + o * outerC + i * innerC, Int32(ldc))
            }
        }
    }
}

/// `parallelFor` whose chunks each call single-threaded OpenBLAS: many small products spread over the cores
/// (OpenBLAS would run each small one on one core anyway and pay its thread hand-off on every call).
func parallelForSingleThreadedBLAS(_ count: Int, grain: Int, _ body: (Int, Int) -> Void) {
    guard Threading.threads > 1 else { return parallelFor(count, grain: grain, body) }
    let previous = openblas_get_num_threads()
    openblas_set_num_threads(1)
    parallelFor(count, grain: grain, body)
    openblas_set_num_threads(previous)
}

/// Splits `0..<extent` into one contiguous, 16-aligned range per thread (at most `threads` of them) and runs
/// `body(lo, hi)` for each on its own core, with single-threaded OpenBLAS inside.
func forEachThreadRange(_ extent: Int, threads: Int, _ body: (Int, Int) -> Void) {
    let per = ((extent + threads - 1) / threads + 15) / 16 * 16
    func run(_ part: Int) {
        let lo = part * per, hi = Swift.min(extent, lo + per)
        if lo < hi { body(lo, hi) }
    }
    if threads <= 1 { return run(0) }
    parallelForSingleThreadedBLAS(threads, grain: 1) { s, e in for part in s..<e { run(part) } }
}
