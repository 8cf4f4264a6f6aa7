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

    /// Re-executes the current process with `OPENBLAS_CORETYPE` set when OpenBLAS fell back to
    /// generic kernels on a CPU that supports better ones. Call first thing in `main`, before
    /// MPI is initialised. Returns normally when nothing needs to change.
    public static func ensureOptimizedKernels() {
        let env = ProcessInfo.processInfo.environment
        guard env["OPENBLAS_CORETYPE"] == nil, env["LORS_BLAS_REEXEC"] == nil else { return }
        let generic: Set<String> = ["Prescott", "Core2", "Penryn", "Dunnington", "Nehalem", "Katmai", "Coppermine",
                                    "Northwood", "Banias", "Atom", "Barcelona"]
        guard generic.contains(coreName), let preferred = preferredCoreType() else { return }
        setenv("OPENBLAS_CORETYPE", preferred, 1)
        setenv("LORS_BLAS_REEXEC", "1", 1)
        let args = CommandLine.arguments
        var cArgs: [UnsafeMutablePointer<CChar>?] = args.map { strdup($0) }
        cArgs.append(nil)
        execv("/proc/self/exe", &cArgs)
        // execv only returns on failure: carry on with the generic kernels.
        FileHandle.standardError.write("lors: warning: could not re-execute with OPENBLAS_CORETYPE=\(preferred) (errno \(errno)); using \(coreName) kernels\n".data(using: .utf8)!)
    }
}
