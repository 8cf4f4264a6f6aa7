// swift-tools-version:5.10
// lors: LORS (Low-rank Residual Structure) training on MPI clusters, OpenBLAS CPU backend.
import PackageDescription
import Foundation

/// Kernels are compiled for the build machine's vector ISA, as HPC codes built with -march=native
/// are: AVX-512 ("skylake-avx512": 16-lane kernels, `LORS_AVX512`) or AVX2+FMA ("haswell": 8 lanes)
/// when /proc/cpuinfo has them (both define `LORS_FMA`: fused multiply-adds in the kernels),
/// otherwise the portable x86-64 baseline. Set LORS_TARGET_CPU=generic (portable), haswell or
/// skylake-avx512 to override, e.g. when the build node differs from the compute nodes.
let (targetCPU, kernelDefines): (String?, [String]) = {
    let known: [String: [String]] = ["skylake-avx512": ["LORS_AVX512", "LORS_FMA"], "haswell": ["LORS_FMA"]]
    if let forced = ProcessInfo.processInfo.environment["LORS_TARGET_CPU"] {
        return forced == "generic" ? (nil, []) : (forced, known[forced] ?? [])
    }
    #if arch(x86_64)
    guard let info = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
          let flags = info.split(separator: "\n").first(where: { $0.hasPrefix("flags") }) else { return (nil, []) }
    let set = Set(flags.split(separator: " ").map(String.init))
    let avx2 = ["avx2", "fma", "f16c", "bmi2"].allSatisfy(set.contains)
    let avx512 = avx2 && ["avx512f", "avx512dq", "avx512bw", "avx512vl", "avx512cd"].allSatisfy(set.contains)
    let cpu = avx512 ? "skylake-avx512" : (avx2 ? "haswell" : nil)
    return (cpu, cpu.flatMap { known[$0] } ?? [])
    #else
    return (nil, [])
    #endif
}()
/// On AVX-512 targets LLVM prefers 256-bit vectors ("prefer-256-bit" tuning) and splits our 16-lane SIMD code into
/// ymm/xmm/scalar pieces; the kernels are written for full-width vectors, so that tuning is switched off (the
/// feature reaches Swift's code generation through the Clang importer's target options).
let wideVectorFlags = kernelDefines.contains("LORS_AVX512") ? ["-Xcc", "-Xclang", "-Xcc", "-target-feature", "-Xcc", "-Xclang", "-Xcc", "-prefer-256-bit"] : []
let kernelSettings: [SwiftSetting] = (targetCPU.map { [.unsafeFlags(["-target-cpu", $0] + wideVectorFlags)] } ?? [])
    + kernelDefines.map { .define($0) }

let package = Package(
    name: "lors",
    products: [
        .executable(name: "lors", targets: ["lors"]),
        .executable(name: "lors-bench", targets: ["lors-bench"]),
        .executable(name: "lors-worker", targets: ["lors-worker"]),
        .library(name: "LorsTensor", targets: ["LorsTensor"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "5.0.1"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.0"),
    ],
    targets: [
        // C system libraries: module map + shim.h with getters for macros Swift cannot import.
        .systemLibrary(name: "CMPI", path: "Sources/CMPI", pkgConfig: "ompi-c", providers: [.apt(["libopenmpi-dev"])]),
        .systemLibrary(name: "CBLAS", path: "Sources/CBLAS", pkgConfig: "openblas", providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CHDF5", path: "Sources/CHDF5", pkgConfig: "hdf5-openmpi", providers: [.apt(["libhdf5-openmpi-dev"])]),
        .systemLibrary(name: "CZlib", path: "Sources/CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        // libdeflate: CRC-32 (zlib's value) with carry-less multiply folding where the CPU has it.
        .systemLibrary(name: "CDeflate", path: "Sources/CDeflate", pkgConfig: "libdeflate", providers: [.apt(["libdeflate-dev"])]),
        // libjpeg-turbo's TurboJPEG API and libpng's simplified API (png_image_*): image decoding and encoding.
        .systemLibrary(name: "CTurboJPEG", path: "Sources/CTurboJPEG", pkgConfig: "libturbojpeg", providers: [.apt(["libturbojpeg0-dev"])]),
        .systemLibrary(name: "CPNG", path: "Sources/CPNG", pkgConfig: "libpng", providers: [.apt(["libpng-dev"])]),

        // Tensors, autograd, kernels behind the backend seam, counter-based RNG.
        .target(name: "LorsTensor", dependencies: ["CBLAS", "CVectorMath"], swiftSettings: kernelSettings),
        // NN modules (Linear, LayerNorm, attention, ...) with named parameters.
        .target(name: "LorsNN", dependencies: ["LorsTensor"]),
        // Models: ViT/DeiT and the AdaMixer detector, vanilla and LORS.
        .target(name: "LorsModels", dependencies: ["LorsNN", "LorsTensor"]),
        // Optimizers (AdamW, SGD), LR schedules, gradient clipping.
        .target(name: "LorsOptim", dependencies: ["LorsTensor"]),
        // YAML configs: _base_ inheritance, --set overrides, strict typed validation.
        .target(name: "LorsConfig", dependencies: [.product(name: "Yams", package: "Yams")]),
        // Thin wrappers over MPI, HDF5 and zlib (checked calls, typed errors); JSONValue, the writer of every JSON output.
        .target(name: "LorsNative", dependencies: ["CMPI", "CHDF5", "CZlib"]),
        // sync_file_range (write-behind while a checkpoint is written), which Swift's Glibc module does not export.
        .target(name: "CFileIO"),
        .target(name: "CVectorMath", cSettings: targetCPU.map { [.unsafeFlags(["-march=" + $0])] } ?? []),
        // Communicators (MPI, in-process), distributed sampler, bucketed gradient reducer, ZeRO-1.
        .target(name: "LorsDistributed", dependencies: ["LorsTensor", "LorsNative", "LorsOptim"]),
        // Sharded checkpoints in parallel HDF5, export (HDF5, safetensors).
        .target(name: "LorsCheckpoint", dependencies: ["LorsTensor", "LorsNN", "LorsOptim", "LorsNative", "LorsDistributed", "CDeflate", "CFileIO"]),
        // 8-bit images: PNG and JPEG decoding and encoding, atomic image files.
        .target(name: "LorsImage", dependencies: ["CTurboJPEG", "CPNG"]),
        // Datasets (Fashion-MNIST IDX, CIFAR-100 binary), augmentations, metrics, the synthetic detection set.
        .target(name: "LorsData", dependencies: ["LorsTensor", "LorsNative", "LorsImage", "LorsDetection"]),
        // COCO instances and detection results JSON, box AP/AR with pycocotools' COCOeval rules.
        .target(name: "LorsDetection"),
        // Training loop with hooks: schedule, logging (console, JSONL, TensorBoard), eval, checkpoints.
        .target(name: "LorsTraining", dependencies: ["LorsTensor", "LorsNN", "LorsModels", "LorsOptim", "LorsConfig",
                                                     "LorsData", "LorsDetection", "LorsDistributed", "LorsCheckpoint", "LorsNative",
                                                     .product(name: "Logging", package: "swift-log")]),
        // Shared command-line plumbing used by the executables.
        .target(name: "LorsCLI", dependencies: ["LorsTensor", "LorsNN", "LorsModels", "LorsOptim", "LorsConfig", "LorsTraining",
                                                "LorsCheckpoint", "LorsNative", "LorsDistributed", "LorsData", "LorsDetection",
                                                .product(name: "ArgumentParser", package: "swift-argument-parser")]),
        .executableTarget(name: "lors", dependencies: ["LorsCLI"]),
        // One MPI rank of a data-parallel run (mpirun -np N lors-worker --config ...).
        .executableTarget(name: "lors-worker", dependencies: ["LorsCLI"]),
        .executableTarget(name: "lors-bench", dependencies: ["LorsCLI", "CBLAS", "LorsCheckpoint", "LorsDistributed", "LorsNative", "LorsModels", "LorsOptim",
                                                           "LorsDetection", "LorsImage", "LorsConfig", "LorsData", "LorsTraining",
                                                           .product(name: "ArgumentParser", package: "swift-argument-parser")]),

        // Test helpers shared by the test targets (assertClose, gradient checks).
        .target(name: "LorsTestSupport", dependencies: ["LorsTensor"], path: "Tests/LorsTestSupport"),
        .testTarget(name: "LorsTensorTests", dependencies: ["LorsTensor", "LorsTestSupport", "CBLAS"], resources: [.copy("Fixtures")]),
        .testTarget(name: "LorsNNTests", dependencies: ["LorsNN", "LorsModels", "LorsTensor", "LorsTestSupport"],
                    resources: [.copy("Fixtures")]),
        .testTarget(name: "LorsOptimTests", dependencies: ["LorsOptim", "LorsNN", "LorsTensor", "LorsTestSupport"]),
        .testTarget(name: "LorsConfigTests", dependencies: ["LorsConfig"]),
        .testTarget(name: "NativeTests", dependencies: ["LorsNative"]),
        .testTarget(name: "LorsDistributedTests", dependencies: ["LorsDistributed", "LorsData", "LorsNN", "LorsModels", "LorsOptim", "LorsNative",
                                                                "LorsTensor", "LorsTestSupport"]),
        .testTarget(name: "LorsCheckpointTests", dependencies: ["LorsCheckpoint", "LorsDistributed", "LorsNN", "LorsModels", "LorsOptim", "LorsTestSupport", "CZlib"]),
        .testTarget(name: "LorsDetectionTests", dependencies: ["LorsDetection", "LorsTestSupport"], resources: [.copy("Fixtures")]),
        .testTarget(name: "LorsDataTests", dependencies: ["LorsData", "LorsImage", "LorsNative", "LorsDetection", "LorsTestSupport"],
                    resources: [.copy("Fixtures")]),
        .testTarget(name: "LorsTrainingTests", dependencies: ["LorsTraining", "LorsCLI", "LorsCheckpoint", "LorsNative", "LorsDistributed",
                                                            "LorsData", "LorsDetection",
                                                            "LorsOptim", "LorsTestSupport", .product(name: "Logging", package: "swift-log")],
                    resources: [.copy("Fixtures")]),
    ]
)
