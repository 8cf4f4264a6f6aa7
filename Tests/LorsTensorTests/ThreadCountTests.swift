import XCTest
import Foundation
import CBLAS
@testable import LorsTensor
import LorsTestSupport

/// Results do not depend on the thread count: products are cut over threads only along C's rows at multiples of
/// `gemmRowSplitAlignment`, with OpenBLAS single-threaded inside. These tests run under whatever OpenBLAS kernels
/// the machine picks; `cluster/test.sh` runs them again under `OPENBLAS_CORETYPE=Haswell` and `Sandybridge` and with
/// our own kernels built for `LORS_TARGET_CPU=haswell`.
final class ThreadCountTests: XCTestCase {
    /// The premise, checked on the running OpenBLAS kernels: a product computed as row slabs that start at multiples
    /// of the alignment (any lengths, ragged tails) equals the whole product bit for bit, for every transpose case,
    /// β = 0 and β = 1. (At 16 rows this fails under the Haswell/Zen kernels.)
    func testOpenBLASRowSlabsAtTheAlignmentEqualTheWholeProduct() {
        var rng = SplitMix(seed: 12)
        var failures = 0
        openblas_set_num_threads(1)
        for trial in 0..<60 {
            let m = rng.int(2, trial % 4 == 0 ? 1500 : 400), n = rng.int(1, trial % 5 == 0 ? 900 : 300)
            let k = rng.int(1, trial % 3 == 0 ? 800 : 260)
            let ta = rng.int(0, 1) == 1, tb = rng.int(0, 1) == 1, beta: Float = rng.int(0, 1) == 1 ? 1 : 0
            let a = (0..<(m * k)).map { _ in rng.float() }, b = (0..<(k * n)).map { _ in rng.float() }
            let c0 = (0..<(m * n)).map { _ in rng.float() }
            let lda = ta ? m : k, ldb = tb ? k : n
            func product(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ c: UnsafeMutablePointer<Float>, rows: Int) {
                cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, Int32(rows),
                            Int32(n), Int32(k), 1, a, Int32(lda), b, Int32(ldb), beta, c, Int32(n))
            }
            var whole = c0, slabs = c0
            a.withUnsafeBufferPointer { a in b.withUnsafeBufferPointer { b in
                whole.withUnsafeMutableBufferPointer { product(a.baseAddress!, b.baseAddress!, $0.baseAddress!, rows: m) }
                slabs.withUnsafeMutableBufferPointer { c in
                    var lo = 0
                    while lo < m {
                        let hi = Swift.min(m, lo + gemmRowSplitAlignment * rng.int(1, 1 + m / gemmRowSplitAlignment / 2))
                        product(a.baseAddress! + (ta ? lo : lo * lda), b.baseAddress!, c.baseAddress! + lo * n, rows: hi - lo)
                        lo = hi
                    }
                }
            } }
            if whole.map(\.bitPattern) != slabs.map(\.bitPattern) {
                failures += 1
                XCTFail("\(m)×\(n)×\(k) ta=\(ta) tb=\(tb) β=\(beta): row slabs differ from the whole product (\(BLASRuntime.coreName) kernels)")
                if failures > 3 { return }
            }
        }
    }

    /// The engine's products, bit for bit equal for 1, 2, 3 and 4 threads and close to a Double reference: every
    /// transpose case; shapes that are cut into 2–4 row parts with ragged tails and wide ones (n > m); α = 1, β = 0 with
    /// no transposes (OpenBLAS's small "direct" kernel case on AVX-512); a batch of fewer large products than threads.
    func testProductsIndependentOfThreadCount() {
        let saved = Threading.threads
        defer { Threading.setThreads(saved) }
        for (m, n, k) in [(301, 203, 257), (770, 211, 157), (200, 700, 130), (97, 389, 211)] {
            XCTAssertEqual(gemmRowParts(m: m, n: n, k: k, threads: 4) > 1, m >= 2 * gemmRowSplitAlignment && m * n * k >= 2 * gemmMinimumPartVolume)
            for (ta, tb) in [(false, false), (false, true), (true, false), (true, true)] {
                let a = randomTensor(ta ? [k, m] : [m, k], "split.a", requiresGrad: false)
                let b = randomTensor(tb ? [n, k] : [k, n], "split.b", requiresGrad: false)
                func product() -> [UInt32] { a.matmul(b, transposeSelf: ta, transposeOther: tb).toArray().map(\.bitPattern) }
                Threading.setThreads(1)
                let one = product()
                for t in [2, 3, 4] {
                    Threading.setThreads(t)
                    XCTAssertEqual(product(), one, "\(m)×\(n)×\(k) ta=\(ta) tb=\(tb) with \(t) threads")
                }
                let av = a.toArray(), bv = b.toArray()
                var worst = 0.0
                for i in stride(from: 0, to: m, by: 7) {
                    for j in 0..<n {
                        var sum = 0.0
                        for p in 0..<k { sum += Double(ta ? av[p * m + i] : av[i * k + p]) * Double(tb ? bv[j * k + p] : bv[p * n + j]) }
                        worst = Swift.max(worst, abs(Double(Float(bitPattern: one[i * n + j])) - sum))
                    }
                }
                XCTAssertLessThan(worst, 1e-4, "\(m)×\(n)×\(k) ta=\(ta) tb=\(tb) vs Double reference")
            }
        }
        // Two large products in one batch (fewer items than threads: each is cut into row parts).
        let xa = randomTensor([2, 400, 150], "split.batch.a", requiresGrad: false), xb = randomTensor([2, 150, 260], "split.batch.b", requiresGrad: false)
        Threading.setThreads(1)
        let one = xa.matmul(xb).toArray().map(\.bitPattern)
        for t in [2, 3, 4] {
            Threading.setThreads(t)
            XCTAssertEqual(xa.matmul(xb).toArray().map(\.bitPattern), one, "batched 2×400×260×150 with \(t) threads")
        }
    }

    /// The fused linear kernels (row blocks of the output) equal the plain product with bias for 1–4 threads.
    func testLinearRowBlocksIndependentOfThreadCount() {
        let saved = Threading.threads
        defer { Threading.setThreads(saved) }
        let x = randomTensor([3, 1301, 96], "lin.x", requiresGrad: false), w = randomTensor([200, 96], "lin.w", requiresGrad: false)
        let bias = randomTensor([200], "lin.b", requiresGrad: false)
        Threading.setThreads(1)
        let one = x.linear(weight: w, bias: bias).toArray().map(\.bitPattern)
        let plain = (x.reshaped([3 * 1301, 96]).matmul(w, transposeOther: true) + bias).toArray()
        XCTAssertLessThan(zip(one, plain).map { abs(Float(bitPattern: $0) - $1) }.max()!, 1e-4)
        for t in [2, 3, 4] {
            Threading.setThreads(t)
            XCTAssertEqual(x.linear(weight: w, bias: bias).toArray().map(\.bitPattern), one, "linear with \(t) threads")
        }
    }

    /// The one thread rule of every command: --threads, else train.threads, else LORS_NUM_THREADS, else
    /// cores / processes on this node; 0 wherever it is chosen means that automatic value.
    func testThreadRuleIsTheSameEverywhere() {
        let env = ["LORS_NUM_THREADS": "3"]
        XCTAssertEqual(Threading.resolve(explicit: 5, configured: 4, environment: env, cores: 16), 5)
        XCTAssertEqual(Threading.resolve(explicit: nil, configured: 4, environment: env, cores: 16), 4)
        XCTAssertEqual(Threading.resolve(explicit: nil, configured: 0, environment: env, cores: 16), 3)
        XCTAssertEqual(Threading.resolve(explicit: nil, configured: nil, environment: [:], cores: 16), 16)
        XCTAssertEqual(Threading.resolve(explicit: 0, configured: 4, environment: env, cores: 16), 16, "0 = automatic")
        XCTAssertEqual(Threading.resolve(explicit: 0, processesOnNode: 4, environment: [:], cores: 16), 4)
        XCTAssertEqual(Threading.resolve(environment: ["OMPI_COMM_WORLD_LOCAL_SIZE": "8"], cores: 16), 2)
        XCTAssertEqual(Threading.resolve(environment: ["SLURM_NTASKS_PER_NODE": "4(x2)"], cores: 16), 4)
        XCTAssertEqual(Threading.resolve(processesOnNode: 32, environment: [:], cores: 16), 1)
        XCTAssertEqual(Threading.resolve(environment: ["LORS_NUM_THREADS": "0", "MPI_LOCALNRANKS": "2"], cores: 16), 8)
    }

    /// Automatic threads divide the cores by the ranks on THIS node (the launcher's local count), never by the world
    /// size: 2 nodes x 2 ranks on 16-core nodes give 8 threads per rank, not 4.
    func testAutomaticThreadsFollowTheNodeLayoutNotTheWorldSize() {
        let openMPI = ["OMPI_COMM_WORLD_SIZE": "4", "OMPI_COMM_WORLD_LOCAL_SIZE": "2", "OMPI_COMM_WORLD_LOCAL_RANK": "1"]
        XCTAssertEqual(Threading.resolve(environment: openMPI, cores: 16), 8)
        XCTAssertEqual(Threading.localRank(environment: openMPI), 1)
        // srun with 3 tasks on the first node and 1 on the second: each node's own count.
        let slurm = ["SLURM_NTASKS": "4", "SLURM_STEP_TASKS_PER_NODE": "3,1", "SLURM_TASKS_PER_NODE": "2(x2)"]
        XCTAssertEqual(Threading.resolve(environment: slurm.merging(["SLURM_NODEID": "0"]) { $1 }, cores: 12), 4)
        XCTAssertEqual(Threading.resolve(environment: slurm.merging(["SLURM_NODEID": "1"]) { $1 }, cores: 12), 12)
        XCTAssertEqual(Threading.processesOnNode(environment: ["SLURM_TASKS_PER_NODE": "2(x3),1", "SLURM_NODEID": "2"]), 2)
        XCTAssertEqual(Threading.processesOnNode(environment: ["SLURM_TASKS_PER_NODE": "2(x3),1", "SLURM_NODEID": "3"]), 1)
        XCTAssertEqual(Threading.localRank(environment: ["SLURM_LOCALID": "3"]), 3)
        XCTAssertNil(Threading.processesOnNode(environment: ["SLURM_NTASKS": "4", "OMPI_COMM_WORLD_SIZE": "4"]))
        XCTAssertEqual(Threading.resolve(environment: ["OMPI_COMM_WORLD_SIZE": "4"], cores: 16), 16, "the world size is not the node's count")
    }
}
