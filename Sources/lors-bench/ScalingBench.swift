import ArgumentParser
import CBLAS
import Foundation
import LorsCLI
import LorsDistributed
import LorsModels
import LorsNative
import LorsNN
import LorsOptim
import LorsTensor

/// `lors-bench scaling`: data-parallel step time on simulated nodes (cluster/simnodes.sh) under link limits.
///
/// The driver (root) brings up the largest node count of `--layouts`, and for every link limit (`simnodes.sh limit`)
/// and layout `NxR` (N nodes × R ranks) runs `mpirun --host lorsn0:R,… lors-bench scaling --rank-worker …`. Each rank
/// trains the model on its own `--batch` samples (weak scaling: the global batch is ranks × batch) with one
/// `GradientReducer` over MPI, and times, interleaved step by step so machine noise hits all alike (every rank starts
/// each timed item after a barrier; a step's time is the slowest rank's):
///
/// - `overlap`: forward, backward with the bucket all-reduces started during backward (`dist.overlap: true`), the
///   rest of the reduction, AdamW;
/// - `no_overlap`: the same with every all-reduce started after backward (`dist.overlap: false`);
/// - `compute`: the same step without any reduction (the reducer disarmed);
/// - `allreduce`: the step's all-reduces alone (every bucket started at once, then waited for), no compute;
/// - `overlap_hooks` (with `--variants`): overlap without the progress thread (MPI polled only from the hooks).
///
/// Also per step: `finish_wait_ms`, the time the last rank to finish backward spends in `finish()` waiting for the
/// all-reduces still in flight (the communication backward did not hide).
///
/// Derived per entry: `bytes_per_step` = 4 × unique trainable parameters (a shared LORS weight once), `exposed_ms` =
/// overlap − compute, `hidden_vs_compute` = 1 − exposed / allreduce, `hidden_by_wait` = 1 − finish wait (overlap) /
/// allreduce; with a limited link, `added_by_limit_ms` = the median over iterations of (overlap step at the limit −
/// the same iteration's overlap step unlimited: the limits interleave step by step in one run) and `hidden_fraction` =
/// 1 − added / allreduce at the limit (`_no_overlap`, `_hooks`: the same for those variants); with layout 1x1,
/// `scaling_efficiency` = samples/s / (ranks × samples/s of 1x1) — the same threads per rank everywhere.
///
/// The simulated nodes share this machine's cores: compute does not scale with nodes; only the network is separate.
struct ScalingBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "scaling",
        abstract: "Data-parallel step time, overlap and scaling on simulated nodes under link limits (root; cluster/simnodes.sh).",
        discussion: "Example: lors-bench scaling --model vit-tiny,vit-tiny-lors --layouts 1x1,2x1,2x2 --link-gbit 0,1 --json")

    @Option(help: "Model(s), comma-separated: \(BenchModels.names.joined(separator: ", ")).") var model: String = "vit-tiny,vit-tiny-lors"
    @Option(help: "Rank layouts NxR (N simulated nodes × R ranks each), comma-separated.") var layouts: String = "1x1,2x1"
    @Option(name: .customLong("link-gbit"), help: "Link limits in Gbit/s between the nodes (0 = none), comma-separated.") var linkGbit: String = "0,1"
    @Option(help: "Samples per rank per step (the global batch is ranks × this).") var batch: Int = 32
    @Option(help: "Timed steps per variant (after 2 warm-up steps), interleaved.") var steps: Int = 6
    @Option(name: .customLong("bucket-mb"), help: "Gradient bucket cap in MiB (dist.bucket_cap_mb).")
    var bucketMB: Double = Double(GradientReducer.defaultBucketCapBytes) / 1_048_576
    @Option(help: "Kernel threads per rank (the same in every layout).") var threads: Int = 1
    @Option(help: "Variants to time, comma-separated: overlap, no_overlap, compute, allreduce, overlap_hooks.")
    var variants: String = "overlap,no_overlap,compute,allreduce"
    @Option(help: "cluster/simnodes.sh to use.") var simnodes: String = "cluster/simnodes.sh"
    @Option(help: "mpirun to use.") var mpirun: String = "mpirun"
    @Flag(help: "Print JSON.") var json = false
    @Flag(help: .hidden) var rankWorker = false
    @Option(help: .hidden) var control: String?

    /// The simnodes script to take down when the driver is interrupted.
    nonisolated(unsafe) static var teardownScript = "cluster/simnodes.sh"

    static func teardownAndExit(_ code: Int32) -> Never {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["bash", teardownScript, "down"]
        try? process.run()
        process.waitUntilExit()
        Foundation.exit(code)
    }

    static let knownVariants = ["overlap", "no_overlap", "compute", "allreduce", "overlap_hooks"]

    func validate() throws {
        for m in model.split(separator: ",") where BenchModels.make(String(m)) == nil {
            throw ValidationError("unknown model '\(m)'; known: \(BenchModels.names.joined(separator: ", "))")
        }
        for v in variants.split(separator: ",") where !Self.knownVariants.contains(String(v)) {
            throw ValidationError("unknown variant '\(v)'; known: \(Self.knownVariants.joined(separator: ", "))")
        }
        _ = try parsedLayouts()
        _ = try parsedLinks()
        guard batch > 0, steps > 0, threads > 0, bucketMB > 0 else { throw ValidationError("--batch, --steps, --threads and --bucket-mb must be positive") }
    }

    func parsedLayouts() throws -> [(nodes: Int, ranks: Int)] {
        try layouts.split(separator: ",").map { item in
            let parts = item.split(separator: "x").compactMap { Int($0) }
            guard parts.count == 2, parts[0] >= 1, parts[1] >= 1 else {
                throw ValidationError("layout '\(item)' is not NxR (N nodes × R ranks per node, e.g. 2x1)")
            }
            return (parts[0], parts[1])
        }
    }

    func parsedLinks() throws -> [Double] {
        try linkGbit.split(separator: ",").map {
            guard let g = Double($0), g >= 0 else { throw ValidationError("link limit '\($0)' is not a number of Gbit/s >= 0") }
            return g
        }
    }

    func run() throws {
        if rankWorker { try runRank() } else { try drive() }
    }

    // MARK: - per rank

    /// One rank's measurements of one model, gathered by the driver from rank 0's stdout (one JSON line per model).
    struct Sample: Codable {
        var model: String
        var ranks: Int
        var hosts: Int
        var batchPerRank: Int
        var threads: Int
        var parameters: Int
        var uniqueTrainable: Int
        var bytesPerStep: Int
        var buckets: [Int]
        var sharedParameters: Int
        var progressThread: Bool
        var milliseconds: [String: [Double]]
    }

    private func runRank() throws {
        let world = try MPICommunicator()
        Threading.setThreads(threads)
        openblas_set_num_threads(1)
        let host = try MPIEnvironment.processorName()
        let hosts = Set(try world.allGather(host)).count
        let chosen = variants.split(separator: ",").map(String.init)
        for name in model.split(separator: ",").map(String.init) {
            let (network, config) = BenchModels.make(name)!
            network.initializeParameters(seed: 0)
            let named = network.namedParameters().filter { $0.1.requiresGrad }
            let images = Tensor(RandomKey(seed: 1, purpose: "bench.images.\(world.rank)").uniforms(batch * 3 * 32 * 32, low: -1, high: 1),
                                shape: [batch, 3, 32, 32])
            let labels = (0..<batch).map { Int32(($0 + world.rank) % config.numClasses) }
            let one = Tensor(images.toArray(elements: 0..<(3 * 32 * 32)), shape: [1, 3, 32, 32])
            let shared = GradientReducer.parametersUsedMoreThanOnce(named.map(\.1)) {
                _ = network(one, ForwardContext(training: true, seed: 0, step: 0))
            }
            let reducer = GradientReducer(parameters: named, communicator: world, bucketCapBytes: max(4, Int(bucketMB * 1_048_576)),
                                          sharedParameters: shared)
            let optimizer = AdamW(parameters: reducer.parameters, learningRate: 1e-4, weightDecay: 0.05)
            /// Runs one step; returns the milliseconds spent in `finish()` (waiting for the all-reduces after backward).
            func step(_ i: Int, variant: String) throws -> Double {
                reducer.zeroGradients()
                if variant == "allreduce" {
                    reducer.overlap = false
                    reducer.beginBackward(synchronize: true)
                    try reducer.finish()
                    return 0
                }
                reducer.overlap = variant != "no_overlap"
                reducer.backgroundProgress = variant != "overlap_hooks"
                reducer.beginBackward(synchronize: variant != "compute")
                let logits = network(images, ForwardContext(training: true, seed: 0, step: i))
                let loss = Tensor.crossEntropy(logits, targets: labels, reduction: .sumDividedBy(Float(batch * world.size)))
                loss.backward()
                let t0 = DispatchTime.now().uptimeNanoseconds
                try reducer.finish()
                let waited = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e6
                withoutGradients { optimizer.step(learningRate: 1e-4) }
                return waited
            }
            // Link limits interleave with the variants step by step (the driver applies each on request), so slow
            // drifts of the machine's load hit every limit and variant alike.
            let linkList = try parsedLinks()
            var times: [String: [Double]] = [:]
            for i in 0..<(steps + 2) {
                for link in linkList {
                    if linkList.count > 1 || i == 0 { try requestLink(link, world: world) }
                    for variant in chosen {
                        try world.barrier()
                        let t0 = DispatchTime.now().uptimeNanoseconds
                        let waited = try step(i, variant: variant)
                        let mine = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e6
                        let slowest = try world.allGather(mine).max() ?? mine
                        // The rank that finished backward last waits only for the communication still in flight.
                        let exposed = try world.allGather(waited).min() ?? waited
                        if i >= 2 {
                            times["\(variant)@\(link)", default: []].append(slowest)
                            times["wait_\(variant)@\(link)", default: []].append(exposed)
                        }
                    }
                }
            }
            let sample = Sample(model: name, ranks: world.size, hosts: hosts, batchPerRank: batch, threads: Threading.threads,
                                parameters: network.parameterCount, uniqueTrainable: reducer.elementCount,
                                bytesPerStep: 4 * reducer.elementCount,
                                buckets: reducer.buckets.map { 4 * $0.range.count }, sharedParameters: shared.count,
                                progressThread: world.allowsBackgroundProgress, milliseconds: times)
            if world.rank == 0 {
                let data = try JSONEncoder().encode(sample)
                print("SCALING-SAMPLE " + String(decoding: data, as: UTF8.self))
            }
        }
    }

    /// Rank 0 asks the driver (through files in `--control`) to set every link to `gbit` and waits for it; then all
    /// ranks go on together.
    private func requestLink(_ gbit: Double, world: Communicator) throws {
        if world.rank == 0, let control {
            ScalingBench.sequence += 1
            let request = "\(ScalingBench.sequence) \(gbit)"
            try request.write(toFile: control + "/request.tmp", atomically: false, encoding: .utf8)
            guard rename(control + "/request.tmp", control + "/request") == 0 else { throw ValidationError("cannot write \(control)/request") }
            let deadline = Date().addingTimeInterval(60)
            while (try? String(contentsOfFile: control + "/ack", encoding: .utf8)) != "\(ScalingBench.sequence)" {
                guard Date() < deadline else { throw ValidationError("the driver did not set the link limit \(gbit) within 60 s") }
                usleep(5_000)
            }
        }
        try world.barrier()
    }

    nonisolated(unsafe) static var sequence = 0

    /// Serves link-limit requests of rank 0 while `process` runs: `simnodes.sh limit G`, then the acknowledgement.
    private func serveLinkRequests(control: String, while process: Process) {
        var served = ""
        while process.isRunning {
            if let request = try? String(contentsOfFile: control + "/request", encoding: .utf8), request != served {
                let parts = request.split(separator: " ")
                if parts.count == 2, let status = try? shell(["bash", simnodes, "limit", String(parts[1])], capture: true).0, status == 0 {
                    try? String(parts[0]).write(toFile: control + "/ack.tmp", atomically: false, encoding: .utf8)
                    _ = rename(control + "/ack.tmp", control + "/ack")
                }
                served = request
            }
            usleep(5_000)
        }
    }

    // MARK: - driver

    private func shell(_ arguments: [String], environment: [String: String]? = nil, capture: Bool = false,
                       whileRunning: ((Process) -> Void)? = nil) throws -> (Int32, String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = arguments
        if let environment { process.environment = environment }
        let pipe = Pipe()
        if capture { process.standardOutput = pipe }
        try process.run()
        if let whileRunning { Thread.detachNewThread { whileRunning(process) } }
        var output = ""
        if capture { output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self) }
        process.waitUntilExit()
        return (process.terminationStatus, output)
    }

    private func drive() throws {
        guard getuid() == 0 else { throw ValidationError("lors-bench scaling needs root (it creates network namespaces with \(simnodes))") }
        guard FileManager.default.isReadableFile(atPath: simnodes) else {
            throw ValidationError("\(simnodes) not found: run from the repository root or pass --simnodes PATH")
        }
        let layoutList = try parsedLayouts(), links = try parsedLinks()
        let maxNodes = layoutList.map(\.nodes).max() ?? 1
        let (upStatus, _) = try shell(["bash", simnodes, "up", String(maxNodes)], capture: true)
        guard upStatus == 0 else { throw ValidationError("\(simnodes) up \(maxNodes) failed (exit \(upStatus))") }
        ScalingBench.teardownScript = simnodes
        signal(SIGINT) { _ in ScalingBench.teardownAndExit(130) }
        signal(SIGTERM) { _ in ScalingBench.teardownAndExit(143) }
        defer { _ = try? shell(["bash", simnodes, "down"], capture: true) }
        var environment = ProcessInfo.processInfo.environment
        let (_, exports) = try shell(["bash", simnodes, "env"], capture: true)
        for line in exports.split(separator: "\n") where line.hasPrefix("export ") {
            let pair = line.dropFirst("export ".count).split(separator: "=", maxSplits: 1)
            if pair.count == 2 { environment[String(pair[0])] = String(pair[1]) }
        }
        environment["OMPI_ALLOW_RUN_AS_ROOT"] = "1"
        environment["OMPI_ALLOW_RUN_AS_ROOT_CONFIRM"] = "1"
        environment["OPENBLAS_NUM_THREADS"] = "1"
        environment["OMPI_MCA_btl_vader_single_copy_mechanism"] = environment["OMPI_MCA_btl_vader_single_copy_mechanism"] ?? "none"
        let me = CommandLine.arguments[0].hasPrefix("/") ? CommandLine.arguments[0]
            : FileManager.default.currentDirectoryPath + "/" + CommandLine.arguments[0]

        struct Entry { var link: Double; var nodes: Int; var perNode: Int; var sample: Sample }
        var entries: [Entry] = []
        let control = (NSTemporaryDirectory() as NSString).appendingPathComponent("lors-bench-scaling-\(getpid())")
        try FileManager.default.createDirectory(atPath: control, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: control) }
        for layout in layoutList {
            // One rank on one node sends nothing over a link: measured once, unlimited (or at the first limit).
            let layoutLinks = layout.nodes == 1 ? [links.contains(0) ? 0 : links[0]] : links
            let hosts = (0..<layout.nodes).map { "lorsn\($0):\(layout.ranks)" }.joined(separator: ",")
            var arguments = [mpirun, "--allow-run-as-root", "--bind-to", "none", "--host", hosts, "-np", String(layout.nodes * layout.ranks),
                             me, "scaling", "--rank-worker", "--model", model, "--batch", String(batch), "--steps", String(steps),
                             "--bucket-mb", String(bucketMB), "--threads", String(threads), "--variants", variants,
                             "--link-gbit", layoutLinks.map { String($0) }.joined(separator: ","), "--control", control]
            if layout.nodes * layout.ranks == 1 { arguments.insert(contentsOf: ["--mca", "btl", "self"], at: 1) }
            // The rsh launcher forwards only OpenMPI's own variables: pass the LORS_ ones (e.g. LORS_PROGRESS_POLL_US).
            for key in environment.keys.sorted() where key.hasPrefix("LORS_") && key != "LORS_SIMNODES_PREFIX" {
                arguments.insert(contentsOf: ["-x", key], at: 1)
            }
            if !json {
                FileHandle.standardError.write(Data("lors-bench scaling: \(layout.nodes)x\(layout.ranks), links \(layoutLinks) Gbit/s\n".utf8))
            }
            for name in ["request", "ack"] { try? FileManager.default.removeItem(atPath: control + "/" + name) }
            let (status, output) = try shell(arguments, environment: environment, capture: true) { process in
                self.serveLinkRequests(control: control, while: process)
            }
            guard status == 0 else { throw ValidationError("mpirun for layout \(layout.nodes)x\(layout.ranks) failed (exit \(status))") }
            for line in output.split(separator: "\n") where line.hasPrefix("SCALING-SAMPLE ") {
                let sample = try JSONDecoder().decode(Sample.self, from: Data(line.dropFirst("SCALING-SAMPLE ".count).utf8))
                for link in layoutLinks {
                    var one = sample
                    one.milliseconds = [:]
                    for (key, values) in sample.milliseconds where key.hasSuffix("@\(link)") {
                        one.milliseconds[String(key.prefix { $0 != "@" })] = values
                    }
                    entries.append(Entry(link: link, nodes: layout.nodes, perNode: layout.ranks, sample: one))
                }
            }
        }
        _ = try shell(["bash", simnodes, "limit", "0"], capture: true)

        func med(_ e: Entry, _ v: String) -> Double? { e.sample.milliseconds[v].map(median) }
        var rows: [JSONValue] = []
        for e in entries {
            let s = e.sample
            var row: JSONObject = [
                "model": .string(s.model), "layout": .string("\(e.nodes)x\(e.perNode)"), "ranks": .int(s.ranks),
                "hosts_seen": .int(s.hosts), "link_gbit": .double(e.link), "batch_per_rank": .int(s.batchPerRank),
                "threads_per_rank": .int(s.threads), "parameters": .int(s.parameters),
                "unique_trainable_parameters": .int(s.uniqueTrainable), "bytes_per_step": .int(s.bytesPerStep),
                "bucket_cap_mb": .double(bucketMB), "bucket_bytes": .array(s.buckets.map { .int($0) }),
                "shared_parameters": .int(s.sharedParameters), "progress_thread": .bool(s.progressThread),
            ]
            var medians = JSONObject()
            for v in Self.knownVariants { if let m = med(e, v) { medians[v] = .double(m) } }
            row["median_ms"] = .object(medians)
            var waits = JSONObject()
            for v in ["overlap", "no_overlap", "overlap_hooks"] { if let m = med(e, "wait_" + v) { waits[v] = .double(m) } }
            row["finish_wait_ms"] = .object(waits)
            var minima = JSONObject()
            for v in Self.knownVariants { if let m = e.sample.milliseconds[v]?.min() { minima[v] = .double(m) } }
            row["step_ms"] = .object(JSONObject(Self.knownVariants.compactMap { v in e.sample.milliseconds[v].map { (v, .array($0.map { .double(($0 * 10).rounded() / 10) })) } }))
            row["min_ms"] = .object(minima)
            if let overlap = med(e, "overlap") {
                let samplesPerSecond = Double(s.ranks * s.batchPerRank) / (overlap / 1000)
                row["samples_per_s"] = .double(samplesPerSecond)
                if s.ranks > 1, let compute = med(e, "compute") {
                    row["exposed_ms"] = .double(overlap - compute)
                    if let allreduce = med(e, "allreduce"), allreduce > 0 {
                        row["hidden_vs_compute"] = .double(1 - (overlap - compute) / allreduce)
                    }
                }
                if s.ranks > 1, let allreduce = med(e, "allreduce"), allreduce > 0 {
                    if let wait = med(e, "wait_overlap") { row["hidden_by_wait"] = .double(1 - wait / allreduce) }
                    if let wait = med(e, "wait_overlap_hooks") { row["hidden_by_wait_hooks"] = .double(1 - wait / allreduce) }
                }
                // The same iteration at the limit and unlimited (interleaved in one run): paired differences.
                func addedByLimit(_ v: String, _ base: Entry) -> Double? {
                    guard let a = e.sample.milliseconds[v], let b = base.sample.milliseconds[v], a.count == b.count, !a.isEmpty else { return nil }
                    return median(zip(a, b).map { $0 - $1 })
                }
                if s.ranks > 1, e.link > 0, let base = entries.first(where: { $0.link == 0 && $0.nodes == e.nodes && $0.perNode == e.perNode && $0.sample.model == s.model }),
                   let allreduce = med(e, "allreduce"), allreduce > 0 {
                    if let added = addedByLimit("overlap", base) {
                        row["added_by_limit_ms"] = .double(added)
                        row["hidden_fraction"] = .double(1 - added / allreduce)
                    }
                    if let added = addedByLimit("no_overlap", base) { row["hidden_fraction_no_overlap"] = .double(1 - added / allreduce) }
                    if let added = addedByLimit("overlap_hooks", base) { row["hidden_fraction_hooks"] = .double(1 - added / allreduce) }
                }
                if let single = entries.first(where: { $0.link == 0 && $0.sample.ranks == 1 && $0.sample.model == s.model }),
                   let singleOverlap = med(single, "overlap") {
                    let singleRate = Double(single.sample.batchPerRank) / (singleOverlap / 1000)
                    row["scaling_efficiency"] = .double(samplesPerSecond / (Double(s.ranks) * singleRate))
                }
            }
            rows.append(.object(row))
        }
        if json {
            let report: JSONObject = ["blas_core": .string(BLASRuntime.coreName), "cores": .int(ProcessInfo.processInfo.activeProcessorCount),
                                      "steps": .int(steps), "results": .array(rows)]
            print(report.text(.indented))
            return
        }
        for case .object(let r) in rows {
            func d(_ k: String) -> String { if case .double(let x)? = r[k] { return String(format: "%.3f", x) }; return "-" }
            func m(_ k: String) -> String {
                if case .object(let o)? = r["median_ms"], case .double(let x)? = o[k] { return String(format: "%.0f", x) }
                return "-"
            }
            print("\(r["model"]!.text()) \(r["layout"]!.text()) link \(d("link_gbit")) Gbit/s: overlap \(m("overlap")) ms, no_overlap \(m("no_overlap")) ms, "
                  + "compute \(m("compute")) ms, allreduce \(m("allreduce")) ms, bytes/step \(r["bytes_per_step"]!.text()), "
                  + "hidden \(d("hidden_fraction")), hidden_vs_compute \(d("hidden_vs_compute")), efficiency \(d("scaling_efficiency"))")
        }
    }
}
