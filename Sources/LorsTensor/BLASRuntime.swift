import Foundation
import CBLAS

/// Start-up checks of the OpenBLAS runtime.
///
/// Debian's OpenBLAS 0.3.21 picks its kernels from the CPU model; on CPUs newer than the
/// library (a virtualised "Intel Xeon Processor" with AVX-512, say) it falls back to the
/// SSE3 "Prescott" kernels, 5× slower than the AVX-512 ones (measured here: sgemm N=1024
/// 19.5 GFLOP/s Prescott, 51 Haswell, 110-121 SkylakeX). OpenBLAS reads its override
/// (`OPENBLAS_CORETYPE`) only when the library loads, so the executables re-execute
/// themselves once with it set. A user's own `OPENBLAS_CORETYPE` is always respected.
public enum BLASRuntime {
    /// The kernel family OpenBLAS selected ("SkylakeX", "Haswell", "Zen", "Prescott", ...).
    public static var coreName: String { String(cString: openblas_get_corename()) }

    /// The best kernel family the CPU supports, from `/proc/cpuinfo` flags (nil if unknown).
    public static func preferredCoreType() -> String? {
        guard let info = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
              let line = info.split(separator: "\n").first(where: { $0.hasPrefix("flags") }) else { return nil }
        let flags = Set(line.split(separator: " ").map(String.init))
        if ["avx512f", "avx512bw", "avx512dq", "avx512vl", "avx512cd"].allSatisfy(flags.contains) { return "SkylakeX" }
        if ["avx2", "fma"].allSatisfy(flags.contains) { return "Haswell" }
        return nil
    }

    /// Re-executes the current process once with OpenBLAS's load-time settings when they need
    /// changing: `OPENBLAS_CORETYPE` when OpenBLAS fell back to generic kernels on a CPU that
    /// supports better ones, and `OPENBLAS_THREAD_TIMEOUT=4` (idle BLAS threads sleep after 2^4
    /// cycles instead of busy-yielding for 2^28, which on 2 cores stole a core from our own
    /// elementwise kernels: 23% of a ViT step was spent in `sched_yield`). Settings the user made
    /// are respected. Call first thing in `main`, before MPI is initialised.
    public static func ensureOptimizedKernels() {
        let env = ProcessInfo.processInfo.environment
        guard env["LORS_BLAS_REEXEC"] == nil else { return }
        var changes: [(String, String)] = []
        let generic: Set<String> = ["Prescott", "Core2", "Penryn", "Dunnington", "Nehalem", "Katmai", "Coppermine",
                                    "Northwood", "Banias", "Atom", "Barcelona"]
        if env["OPENBLAS_CORETYPE"] == nil, generic.contains(coreName), let preferred = preferredCoreType() {
            changes.append(("OPENBLAS_CORETYPE", preferred))
        }
        if env["OPENBLAS_THREAD_TIMEOUT"] == nil && env["GOTO_THREAD_TIMEOUT"] == nil {
            changes.append(("OPENBLAS_THREAD_TIMEOUT", "4"))
        }
        guard !changes.isEmpty else { return }
        for (k, v) in changes { setenv(k, v, 1) }
        setenv("LORS_BLAS_REEXEC", "1", 1)
        let args = CommandLine.arguments
        var cArgs: [UnsafeMutablePointer<CChar>?] = args.map { strdup($0) }
        cArgs.append(nil)
        execv("/proc/self/exe", &cArgs)
        // execv only returns on failure: carry on with the library's own choices.
        FileHandle.standardError.write("lors: warning: could not re-execute with \(changes) (errno \(errno)); using \(coreName) kernels\n".data(using: .utf8)!)
    }
}
