import ArgumentParser
import CBLAS
import Foundation
import LorsCLI
import LorsModels
import LorsNative
import LorsNN
import LorsOptim
import LorsTensor

/// `lors-bench`: speed and memory numbers (never pass/fail): `sgemm`, `step`.
struct LorsBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lors-bench", abstract: "Benchmarks of the lors engine; every verb prints numbers (--json for machines): sgemm, step, checkpoint, data, scaling.",
        subcommands: [SgemmBench.self, StepBench.self, CheckpointBench.self, DataBench.self, ScalingBench.self])
}

/// Median of a sample.
func median(_ xs: [Double]) -> Double {
    let s = xs.sorted()
    return s.isEmpty ? 0 : (s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2)
}

func seconds(_ body: () -> Void) -> Double {
    let t0 = DispatchTime.now().uptimeNanoseconds
    body()
    return Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
}

/// Engine matmul vs raw cblas_sgemm for square sizes, both on the same number of threads: the raw call runs on
/// OpenBLAS's own threads (set to `--threads` around it; the engine otherwise keeps OpenBLAS single-threaded).
struct SgemmBench: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "sgemm", abstract: "Engine matmul vs raw cblas_sgemm (OpenBLAS's own threading), N×N×N, same threads.")
    @OptionGroup var threads: ThreadOptions
    @Option(help: "Comma-separated sizes.") var sizes: String = "256,512,1024,2048"
    @Option(help: "Repetitions per size (median reported).") var repeats: Int = 5
    @Flag(help: "Print JSON.") var json = false

    func run() throws {
        threads.apply()
        var rows: [JSONValue] = []
        for n in sizes.split(separator: ",").compactMap({ Int($0) }) {
            let a = Tensor(RandomKey(seed: 1, purpose: "a").uniforms(n * n), shape: [n, n])
            let b = Tensor(RandomKey(seed: 1, purpose: "b").uniforms(n * n), shape: [n, n])
            let c = Tensor(uninitialized: [n, n])
            let flop = 2 * Double(n) * Double(n) * Double(n)
            var raw: [Double] = [], engine: [Double] = []
            _ = a.matmul(b)
            for _ in 0..<repeats {
                openblas_set_num_threads(Int32(Threading.threads))
                a.withHostBuffer { a in
                    b.withHostBuffer { b in
                        c.withMutableHostBuffer { c in
                            raw.append(seconds {
                                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(n), Int32(n), Int32(n), 1,
                                            a.baseAddress, Int32(n), b.baseAddress, Int32(n), 0, c.baseAddress, Int32(n))
                            })
                        }
                    }
                }
                openblas_set_num_threads(1)
                engine.append(seconds { _ = withoutGradients { a.matmul(b) } })
            }
            let rawG = flop / median(raw) / 1e9, engG = flop / median(engine) / 1e9
            rows.append(["n": .int(n), "raw_gflops": .double(rawG), "engine_gflops": .double(engG), "engine_over_raw": .double(engG / rawG)])
            if !json { print(String(format: "N=%5d  cblas %7.1f GFLOP/s  engine %7.1f GFLOP/s  (%.2f×)", n, rawG, engG, engG / rawG)) }
        }
        if json {
            let report: JSONObject = ["blas_core": .string(BLASRuntime.coreName), "threads": .int(Threading.threads), "results": .array(rows)]
            print(report.text(.indented))
        }
    }
}

/// One full training step (forward, backward, AdamW) of a benchmark model.
struct StepBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "step", abstract: "Time full training steps (forward, backward, AdamW).",
        discussion: "Several comma-separated models run side by side: their steps alternate, so machine noise hits all "
            + "of them alike, and the JSON adds `step_time_ratio` (each model's median over the first model's).")
    @Option(help: "Model(s): vit-tiny (32×32×3, patch 4, dim 192, 12 blocks, 3 heads, MLP 768, 100 classes), vit-tiny-lors (the same with LORST), adamixer-tiny, adamixer-tiny-lors (the small CPU detector of configs/fmnist_det_adamixer*.yaml), adamixer-r50, adamixer-r50-lors (the paper's R-50 detectors); comma-separated to compare.")
    var model: String = "vit-tiny"
    @Option(help: "Batch size (default: 64 for the ViTs, 16 for adamixer-tiny*, 2 for adamixer-r50*).") var batch: Int?
    @Option(help: ArgumentHelp("Detectors: input size WxH (default: 256x256 for adamixer-tiny*, 1333x800 for adamixer-r50*).", valueName: "WxH"))
    var size: String?
    @Option(help: "Timed steps per model (after 2 warm-up steps).") var steps: Int = 10
    @OptionGroup var threads: ThreadOptions
    @Flag(help: "Print JSON.") var json = false
    @Flag(help: "Also time each op (forward and backward separately, plus the optimizer) over the timed steps and print where a step's time goes (JSON: `profile`). Each op is charged the wall time since the previous op ended.")
    var profile = false

    /// One model with its optimizer and inputs.
    final class Runner: StepRunner {
        let name: String
        let network: VisionTransformer
        let config: ViTConfiguration
        let optimizer: AdamW
        let images: Tensor
        let labels: [Int32]
        var times: [Double] = []

        init(name: String, batch: Int) throws {
            guard let (network, config) = BenchModels.make(name) else {
                throw ValidationError("unknown model '\(name)'; known: \((BenchModels.names + DetectorRunner.names).joined(separator: ", "))")
            }
            network.initializeParameters(seed: 0)
            self.name = name
            self.network = network
            self.config = config
            optimizer = AdamW(parameters: network.trainableParameters, learningRate: 1e-4, weightDecay: 0.05)
            images = Tensor(RandomKey(seed: 1, purpose: "bench.images").uniforms(batch * 3 * 32 * 32, low: -1, high: 1),
                            shape: [batch, 3, 32, 32])
            labels = (0..<batch).map { Int32($0 % config.numClasses) }
        }

        var batch: Int { images.shape[0] }
        var parameterCount: Int { network.parameterCount }
        var flopPerStep: Double? { BenchModels.trainingFLOPs(config, batch: batch) }
        var details: JSONObject { [:] }

        func step(_ i: Int, profiler: OpProfiler? = nil) throws -> Double {
            seconds {
                profiler?.begin()
                let logits = network(images, ForwardContext(training: true, seed: 0, step: i))
                let loss = Tensor.crossEntropy(logits, targets: labels, reduction: .sumDividedBy(Float(images.shape[0])))
                loss.backward()
                profiler?.mark("backward (accumulation, hooks)")
                optimizer.step(learningRate: 1e-4)
                optimizer.zeroGrad()
                profiler?.mark("optimizer (AdamW, zero_grad)")
            }
        }
    }

    func run() throws {
        threads.apply()
        let runners: [any StepRunner] = try model.split(separator: ",").map { part -> any StepRunner in
            let name = String(part)
            if DetectorRunner.names.contains(name) {
                return try DetectorRunner(name: name, batch: batch, size: size)
            }
            return try Runner(name: name, batch: batch ?? 64)
        }
        for i in 0..<2 { for r in runners { _ = try r.step(i, profiler: nil) } }
        let freshBefore = Backends.current.memoryStatistics.freshAllocations
        let profilers = runners.map { _ in profile ? OpProfiler() : nil }
        for i in 2..<(steps + 2) {
            for (r, p) in zip(runners, profilers) {
                p?.install()
                r.times.append(try r.step(i, profiler: p))
                p?.uninstall()
            }
        }
        let fresh = Backends.current.memoryStatistics.freshAllocations - freshBefore
        var results: [JSONObject] = runners.map { r in
            let med = median(r.times)
            var record: JSONObject = [
                "model": .string(r.name), "batch": .int(r.batch), "threads": .int(Threading.threads), "steps": .int(steps),
                "blas_core": .string(BLASRuntime.coreName), "median_ms": .double(med * 1000), "min_ms": .double((r.times.min() ?? 0) * 1000),
                "peak_rss_mb": .double(ProcessStats.peakRSSMB), "parameters": .int(r.parameterCount),
                // Buffers the allocator had to create during the timed (steady-state) steps: 0 means every
                // activation, gradient and workspace reused cached memory.
                "fresh_allocations_steady": .int(fresh),
            ]
            // Matrix-product FLOPs the engine performs (dense-equivalent: the LORS variant's B·A products are not counted).
            if let flop = r.flopPerStep {
                record["gflop_per_step"] = .double(flop / 1e9)
                record["gflops"] = .double(flop / med / 1e9)
            }
            for (key, value) in r.details.fields { record[key] = value }
            return record
        }
        for (k, p) in profilers.enumerated() {
            guard let p else { continue }
            results[k]["profile"] = .array(p.rows(steps: steps).map {
                ["op": .string($0.op), "ms_per_step": .double($0.ms), "percent": .double($0.percent)]
            })
            if !json { print("\(runners[k].name): time per step by op (each op charged the time since the previous op ended)"); print(p.table(steps: steps)) }
        }
        if !json {
            for r in runners {
                let med = median(r.times)
                let flops = r.flopPerStep.map { String(format: ", %.1f GFLOP/step, %.1f GFLOP/s", $0 / 1e9, $0 / med / 1e9) } ?? ""
                print(String(format: "%@ batch %d, %d threads (%@): median %.1f ms/step%@, peak RSS %.0f MB",
                             r.name, r.batch, Threading.threads, BLASRuntime.coreName, med * 1000, flops, ProcessStats.peakRSSMB))
            }
        }
        if runners.count == 1 {
            if json { print(results[0].text(.indented)) }
            return
        }
        let base = median(runners[0].times)
        let ratios = runners.map { ($0.name, median($0.times) / base) }
        if json {
            let report: JSONObject = ["models": .array(results.map(JSONValue.object)),
                                      "step_time_ratio": .object(JSONObject(ratios.map { ($0, .double($1)) })),
                                      "reference": .string(runners[0].name)]
            print(report.text(.indented))
        } else {
            for (name, ratio) in ratios.dropFirst() { print(String(format: "%@ / %@ step time: %.3f×", name, runners[0].name, ratio)) }
        }
    }
}

/// A model whose training steps `lors-bench step` times.
protocol StepRunner: AnyObject {
    var name: String { get }
    var batch: Int { get }
    var parameterCount: Int { get }
    /// Matrix-product FLOPs of one step, where known.
    var flopPerStep: Double? { get }
    /// Extra JSON fields of the model's record.
    var details: JSONObject { get }
    var times: [Double] { get set }
    /// One timed step: forward, loss, backward, optimizer.
    func step(_ i: Int, profiler: OpProfiler?) throws -> Double
}

/// Benchmark models by name.
enum BenchModels {
    static let names = ["vit-tiny", "vit-tiny-lors"]

    static func make(_ name: String) -> (VisionTransformer, ViTConfiguration)? {
        switch name {
        case "vit-tiny":
            let c = ViTConfiguration.tiny
            return (VisionTransformer(c), c)
        case "vit-tiny-lors":
            // DeiT-Tiny LORS (docs/lors.md): LORST on qkv/proj/fc1/fc2, r = 32, default group lists.
            let c = ViTConfiguration.tiny
            return (VisionTransformer(c, linears: LORSLinearFactory(LORSViTConfiguration())), c)
        default: return nil
        }
    }

    /// Matrix-product FLOPs of one training step as the engine computes it (`ViTConfiguration.trainingMatrixFLOPs`).
    static func trainingFLOPs(_ c: ViTConfiguration, batch: Int) -> Double { Double(c.trainingMatrixFLOPs(batch: batch)) }
}

BLASRuntime.ensureOptimizedKernels()
LorsBench.main()

/// Charges wall time to ops through the tape's observers: each recorded forward op and each backward op gets the time
/// since the previous one ended; `mark` closes a named phase (gradient accumulation after the last backward op, the
/// optimizer).
final class OpProfiler {
    private var totals: [String: Double] = [:]
    private var last: UInt64 = 0

    func begin() { last = DispatchTime.now().uptimeNanoseconds }

    func mark(_ name: String) {
        let now = DispatchTime.now().uptimeNanoseconds
        totals[name, default: 0] += Double(now - last) / 1e9
        last = now
    }

    func install() {
        // Ops run inside a backward closure (not recorded) stay part of that backward op's time.
        Tape.shared.forwardObserver = { [unowned self] op, _, _ in if Tape.shared.isRecording { mark("forward " + op) } }
        Tape.shared.backwardObserver = { [unowned self] op, _, _ in mark("backward " + op) }
    }

    func uninstall() {
        Tape.shared.forwardObserver = nil
        Tape.shared.backwardObserver = nil
    }

    func rows(steps: Int) -> [(op: String, ms: Double, percent: Double)] {
        let total = totals.values.reduce(0, +)
        return totals.sorted { $0.value > $1.value }.map { ($0.key, $0.value * 1000 / Double(steps), 100 * $0.value / total) }
    }

    func table(steps: Int) -> String {
        rows(steps: steps).map { "  " + $0.op.padding(toLength: 40, withPad: " ", startingAt: 0) + String(format: " %9.2f ms %6.1f%%", $0.ms, $0.percent) }.joined(separator: "\n")
    }
}
