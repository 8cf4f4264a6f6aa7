import ArgumentParser
import Foundation
import LorsCheckpoint
import LorsCLI
import LorsDistributed
import LorsModels
import LorsNative
import LorsNN
import LorsOptim
import LorsTensor

/// `lors-bench checkpoint [--json]`: write and load speed of a checkpoint of a ~60M-parameter ViT with AdamW state
/// (model + exp_avg + exp_avg_sq: 3 × 4 bytes per parameter), beside the raw sequential write and read speed of the
/// same number of bytes on the same disk, measured in the same run with the same flush (fsync) and the same page
/// cache eviction (posix_fadvise DONTNEED) before reading.
///
/// Under `mpirun -np N` (MPI detected from the launcher's environment) the checkpoint is written collectively with
/// parallel HDF5 (the ranks split the tensors) and the raw baseline is N concurrent streams of bytes/N each into and out
/// of one shared file (the checkpoint's layout); `raw_separate_files_*` gives the same with one file per rank.
///
/// - `write_mb_s`: `CheckpointWriter.write` + fsync (creating the file, datasets, checksums, metadata);
/// - `commit_mb_s`: the whole atomic `CheckpointDirectory.save` (write, fsync, re-open and verify every checksum,
///   rename, pointer files);
/// - `load_mb_s`: open + `loadModel` + `loadOptimizer` (every checksum verified) from a cold page cache (the reader
///   asks the kernel to read ahead with posix_fadvise WILLNEED; the raw read is plain 8 MiB `read`s). The model and
///   the optimizer here already hold their tensors, which the reader fills in place; a resume in a new process has
///   no optimizer state yet, so its load also touches fresh memory for it (measured: about 0.05–0.1 lower
///   `load_vs_raw_read` at np 2 on the 2-core test VM).
///
/// Before each timed write and load every rank writes its share of the bytes into a scratch file that it deletes
/// at once (`--no-prewarm` skips it): on this project's Firecracker VMs page-cache memory not recently used has to
/// be faulted in from the host, 10x slower (2.1 s instead of 0.2 s for 740 MB), and that hit one side of the
/// comparison or the other at random. A machine that has been running, as a training job's has, has such memory.
///
/// Baselines, each labelled: `raw_write_mb_s` is a plain sequential write + fsync (the usual yardstick of checkpoint
/// speed: `write_vs_raw`, `commit_vs_raw`, `load_vs_raw_write`); `raw_write_behind_mb_s` is the same write with the
/// write-behind the checkpoint writer itself uses (`WriteBehind`: the disk write of each 16 MiB starts while later bytes
/// are copied), the fair baseline for the writer (`write_vs_raw_write_behind`); `load_vs_raw_read` holds the load to
/// the raw cold read.
///
/// `phases_s`: where the time goes, per phase (slowest rank, median over the repetitions): the writer's own phases
/// (`write.agree`, `.create`, `.data`, `.checksums`, `.metadata`, `.close`, see `CheckpointWriter.phaseSeconds`) and
/// its `write.fsync`, beside the raw baselines' `raw_write.write` (pwrites into the page cache) and `raw_write.fsync`,
/// and `raw_write_behind.write` and `.fsync`.
///
/// With `--repeats N` the best of each measurement is reported, and the medians under `median`; the first
/// repetition pays first-touch page faults of fresh tensor memory that later ones reuse from the allocator cache.
struct CheckpointBench: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "checkpoint",
                                                    abstract: "Checkpoint write/load MB/s of a ~60M-parameter model with AdamW state vs raw disk speed.")
    @Option(help: "Directory for the files (default: a new directory under the system temporary directory).") var dir: String?
    @Option(help: "Transformer blocks of the benchmark ViT (dim 768, MLP 3456): 8 gives 61.5M parameters.") var depth: Int = 8
    @Option(help: "Repetitions (the best of each measurement is reported, the medians under \"median\").") var repeats: Int = 1
    @Flag(help: "Print JSON.") var json = false
    @Flag(help: "Skip re-warming page-cache memory before each timed write and load (see the type's documentation).")
    var noPrewarm = false

    func run() throws {
        let environment = ProcessInfo.processInfo.environment
        let underMPI = ["OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK"].contains { environment[$0] != nil }
        let comm: any Communicator = underMPI ? try MPICommunicator() : LocalCommunicator()
        let rank = comm.rank, size = comm.size
        var directory = dir ?? (NSTemporaryDirectory() as NSString).appendingPathComponent("lors-bench-checkpoint-\(getpid())")
        directory = try comm.broadcast(directory, root: 0)
        if rank == 0 { try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true) }
        try comm.barrier()
        defer { if rank == 0 && dir == nil { try? FileManager.default.removeItem(atPath: directory) } }

        var c = ViTConfiguration()
        c.embedDim = 768; c.numHeads = 12; c.depth = depth; c.mlpRatio = 4.5
        let model = VisionTransformer(c)
        model.initializeParameters(seed: 0)
        for (name, tensor) in model.namedParameters() { tensor.name = name }
        let optimizer = AdamW(parameters: model.parameters, learningRate: 1e-3, weightDecay: 0.05)
        for p in model.parameters {
            p.grad = Tensor(RandomKey(seed: 1, purpose: "bench.grad." + p.name).uniforms(p.count, low: -1, high: 1), shape: p.shape)
        }
        optimizer.step()
        let parameters = model.parameterCount
        let meta = CheckpointMetadata(step: 1, epoch: 0, worldSize: size, config: "model:\n  vit:\n    depth: \(depth)\n")
        let describe: (CheckpointWriter) -> Void = { writer in
            writer.addModel(model)
            writer.addOptimizerState(optimizer, model: model)
        }

        var writeTimes: [Double] = [], commitTimes: [Double] = [], loadTimes: [Double] = []
        var rawWriteTimes: [Double] = [], rawReadTimes: [Double] = [], rawWriteBehindTimes: [Double] = []
        var separateWriteTimes: [Double] = [], separateReadTimes: [Double] = []
        var phases: [String: [Double]] = [:]   // seconds of each phase per repetition, slowest rank
        var phaseOrder: [String] = []          // the phases in the order they first ran
        func record(_ name: String, _ seconds: Double) throws {
            if phases[name] == nil { phaseOrder.append(name) }
            phases[name, default: []].append(try slowest(seconds, comm))
        }
        // Every timed write and load first gets page-cache memory the way a machine that has been running has it.
        let warmShare = 12 * parameters / size + (4 << 20)
        func prewarm() throws {
            if !noPrewarm { try prewarmPageCache(directory: directory, rank: rank, bytes: warmShare) }
            try comm.barrier()
        }
        var bytes = 0
        for repetition in 0..<max(1, repeats) {
            // Writer alone + fsync.
            let plain = (directory as NSString).appendingPathComponent("plain_\(repetition).h5")
            try prewarm()
            var writerPhases: [(phase: String, seconds: Double)] = []
            var fsyncSeconds = 0.0
            writeTimes.append(try timed(comm) {
                let writer = CheckpointWriter(path: plain, communicator: comm, faultInjection: nil)
                describe(writer)
                try writer.write(metadata: meta, optimizer: OptimizerMetadata(describing: optimizer))
                writerPhases = writer.phaseSeconds
                fsyncSeconds = try seconds { try fsyncFile(plain) }
            })
            for (phase, seconds) in writerPhases { try record("write." + phase, seconds) }
            try record("write.fsync", fsyncSeconds)
            bytes = fileSize(plain)
            if rank == 0 { unlink(plain) }

            // The whole atomic commit.
            let work = (directory as NSString).appendingPathComponent("work_\(repetition)")
            let checkpoints = CheckpointDirectory(workDirectory: work, communicator: comm)
            var path = ""
            try prewarm()
            commitTimes.append(try timed(comm) {
                path = try checkpoints.save(metadata: meta, optimizer: OptimizerMetadata(describing: optimizer), faultInjection: nil,
                                            describe: describe).path
            })

            // Load from a cold cache (every rank loads the whole model and optimizer, as a replicated resume does).
            evict(path)
            try prewarm()
            loadTimes.append(try timed(comm) {
                let reader = try CheckpointReader(path: path, communicator: comm)
                try reader.loadModel(into: model)
                try reader.loadOptimizer(optimizer, model: model)
                try reader.close()
            })
            try comm.barrier()
            if rank == 0 { try? FileManager.default.removeItem(atPath: work) }

            // Raw sequential write (+ fsync) and cold read of the same number of bytes, split over the ranks: into ONE
            // file (each rank its contiguous share at its offset), the layout a checkpoint has; and, for comparison,
            // one file per rank (on a local ext4 the writes of N ranks into one file serialise on the inode lock,
            // N separate files do not, so that figure is what the disk does without the one-file rule).
            let shared = (directory as NSString).appendingPathComponent("raw_\(repetition).bin")
            let share = bytes / size + (rank < bytes % size ? 1 : 0)
            let offset = rank * (bytes / size) + Swift.min(rank, bytes % size)
            if rank == 0 { close(open(shared, O_WRONLY | O_CREAT | O_TRUNC, 0o644)) }
            try prewarm()
            var rawPhases = (write: 0.0, fsync: 0.0)
            rawWriteTimes.append(try timed(comm) { rawPhases = try rawWrite(shared, bytes: share, offset: offset) })
            try record("raw_write.write", rawPhases.write)
            try record("raw_write.fsync", rawPhases.fsync)
            evict(shared)
            try prewarm()
            rawReadTimes.append(try timed(comm) { try rawRead(shared, bytes: share, offset: offset) })
            try comm.barrier()
            if rank == 0 { unlink(shared) }
            // The same raw write with the writer's write-behind.
            let behind = (directory as NSString).appendingPathComponent("raw_behind_\(repetition).bin")
            if rank == 0 { close(open(behind, O_WRONLY | O_CREAT | O_TRUNC, 0o644)) }
            try comm.barrier()
            try prewarm()
            var behindPhases = (write: 0.0, fsync: 0.0)
            rawWriteBehindTimes.append(try timed(comm) {
                behindPhases = try rawWrite(behind, bytes: share, offset: offset, writeBehind: true)
            })
            try record("raw_write_behind.write", behindPhases.write)
            try record("raw_write_behind.fsync", behindPhases.fsync)
            try comm.barrier()
            if rank == 0 { unlink(behind) }
            if size > 1 {
                let own = (directory as NSString).appendingPathComponent("raw_\(repetition)_\(rank).bin")
                close(open(own, O_WRONLY | O_CREAT | O_TRUNC, 0o644))
                try prewarm()
                separateWriteTimes.append(try timed(comm) { _ = try rawWrite(own, bytes: share, offset: 0) })
                evict(own)
                try prewarm()
                separateReadTimes.append(try timed(comm) { try rawRead(own, bytes: share, offset: 0) })
                unlink(own)
            }
        }
        guard rank == 0 else { return }
        let mb = Double(bytes) / 1_000_000
        func rate(_ times: [Double]) -> Double { mb / (times.min() ?? .infinity) }
        func median(_ values: [Double]) -> Double { values.isEmpty ? .infinity : values.sorted()[values.count / 2] }
        /// The rates and their ratios, `pick` choosing one time of each list (the best, or the median).
        func figures(_ pick: ([Double]) -> Double) -> JSONObject {
            let write = mb / pick(writeTimes), commit = mb / pick(commitTimes), load = mb / pick(loadTimes)
            let rawWrite = mb / pick(rawWriteTimes), rawRead = mb / pick(rawReadTimes)
            let rawWriteBehind = mb / pick(rawWriteBehindTimes)
            return ["write_mb_s": .double(write), "commit_mb_s": .double(commit), "load_mb_s": .double(load),
                    "raw_write_mb_s": .double(rawWrite), "raw_write_behind_mb_s": .double(rawWriteBehind),
                    "raw_read_mb_s": .double(rawRead),
                    "write_vs_raw": .double(write / rawWrite), "write_vs_raw_write_behind": .double(write / rawWriteBehind),
                    "commit_vs_raw": .double(commit / rawWrite),
                    "load_vs_raw_read": .double(load / rawRead), "load_vs_raw_write": .double(load / rawWrite)]
        }
        var result = figures { $0.min() ?? .infinity }
        let rest: JSONObject = [
            "parameters": .int(parameters), "bytes": .int(bytes), "np": .int(size), "prewarm": .bool(!noPrewarm),
            "directory": .string(directory), "repeats": .int(max(1, repeats)),
            "write_s": .double(writeTimes.min() ?? 0), "commit_s": .double(commitTimes.min() ?? 0), "load_s": .double(loadTimes.min() ?? 0),
            "peak_rss_mb": .double(ProcessStats.peakRSSMB),
            "raw_separate_files_write_mb_s": .double(separateWriteTimes.isEmpty ? rate(rawWriteTimes) : rate(separateWriteTimes)),
            "raw_separate_files_read_mb_s": .double(separateReadTimes.isEmpty ? rate(rawReadTimes) : rate(separateReadTimes)),
            "phases_s": .object(JSONObject(phaseOrder.map { ($0, .double(median(phases[$0]!))) })),
            "median": .object(figures(median)),
        ]
        for (key, value) in rest.fields { result[key] = value }
        if json { print(result.text(.indented)) } else {
            print(String(format: "checkpoint of %.1fM parameters + AdamW state (%.0f MB), np %d: write %.0f MB/s (raw %.0f MB/s, %.0f%%; "
                + "raw with write-behind %.0f MB/s, %.0f%%), commit incl. verify %.0f MB/s, load %.0f MB/s (raw read %.0f MB/s, %.0f%%)",
                         Double(parameters) / 1e6, mb, size, rate(writeTimes), rate(rawWriteTimes), 100 * rate(writeTimes) / rate(rawWriteTimes),
                         rate(rawWriteBehindTimes), 100 * rate(writeTimes) / rate(rawWriteBehindTimes),
                         rate(commitTimes), rate(loadTimes), rate(rawReadTimes), 100 * rate(loadTimes) / rate(rawReadTimes)))
        }
    }
}

/// Wall seconds of `body` on this rank.
private func seconds(_ body: () throws -> Void) rethrows -> Double {
    let t0 = DispatchTime.now().uptimeNanoseconds
    try body()
    return Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
}

/// Wall time of `body` on the slowest rank (a barrier after it).
private func timed(_ comm: any Communicator, _ body: () throws -> Void) throws -> Double {
    let elapsed = try seconds {
        try body()
        try comm.barrier()
    }
    return try slowest(elapsed, comm)
}

/// The largest of every rank's `seconds`.
private func slowest(_ seconds: Double, _ comm: any Communicator) throws -> Double {
    try comm.allGather(seconds).max() ?? seconds
}

private func fileSize(_ path: String) -> Int { ((try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? Int) ?? 0 }

private func fsyncFile(_ path: String) throws {
    let fd = open(path, O_RDONLY)
    guard fd >= 0 else { throw ValidationError("cannot open \(path)") }
    defer { close(fd) }
    fsync(fd)
}

/// Drops the file's (clean) pages from the page cache, so the next read comes from the disk.
private func evict(_ path: String) {
    let fd = open(path, O_RDONLY)
    guard fd >= 0 else { return }
    fsync(fd)
    posix_fadvise(fd, 0, 0, Int32(POSIX_FADV_DONTNEED))
    close(fd)
}

private let chunkBytes = 8 << 20

/// Writes `bytes` into a scratch file in the page cache and deletes it at once (no disk write), so the timed I/O
/// after it finds that much recently freed memory. On VMs whose free memory goes back to the host (Firecracker,
/// balloon free-page reporting) filling page-cache memory that was not recently used costs host page faults:
/// measured here 2.1 s instead of 0.2 s for 740 MB, at random for one side of a comparison or the other.
private func prewarmPageCache(directory: String, rank: Int, bytes: Int) throws {
    let path = (directory as NSString).appendingPathComponent("prewarm_\(rank).bin")
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    guard fd >= 0 else { throw ValidationError("cannot create \(path)") }
    unlink(path)
    defer { close(fd) }   // the last reference: the dirty pages are dropped, never written
    try writeChunks(fd, path: path, chunk: [UInt8](repeating: 1, count: chunkBytes), bytes: bytes, offset: 0)
}

/// `bytes` at file `offset`, as pwrites of `chunk` (the last one cut short); `wrote(offset, bytes)` after each.
private func writeChunks(_ fd: Int32, path: String, chunk: [UInt8], bytes: Int, offset: Int,
                         wrote: (Int, Int) -> Void = { _, _ in }) throws {
    var done = 0
    while done < bytes {
        let n = min(bytes - done, chunk.count)
        let written = chunk.withUnsafeBytes { pwrite(fd, $0.baseAddress, n, off_t(offset + done)) }
        guard written == n else { throw ValidationError("short write to \(path)") }
        wrote(offset + done, n)
        done += n
    }
}

/// Writes `bytes` at `offset` in 8 MiB pwrites, then fsyncs; returns the seconds of each part. With `writeBehind`, each
/// chunk is reported to a `WriteBehind` as the checkpoint writer does, so the disk write starts during the copy.
private func rawWrite(_ path: String, bytes: Int, offset: Int, writeBehind: Bool = false) throws -> (write: Double, fsync: Double) {
    let fd = open(path, O_WRONLY)
    guard fd >= 0 else { throw ValidationError("cannot open \(path)") }
    defer { close(fd) }
    var chunk = [UInt8](repeating: 0, count: chunkBytes)
    for i in 0..<chunk.count { chunk[i] = UInt8(truncatingIfNeeded: i &* 2_654_435_761 >> 13) }
    let behind = writeBehind ? WriteBehind(path: path) : nil
    let write = try seconds {
        try writeChunks(fd, path: path, chunk: chunk, bytes: bytes, offset: offset) { behind?.wrote(offset: $0, bytes: $1) }
        behind?.finish()
    }
    let flush = try seconds { guard fsync(fd) == 0 else { throw ValidationError("fsync \(path) failed") } }
    return (write, flush)
}

private func rawRead(_ path: String, bytes: Int, offset: Int) throws {
    let fd = open(path, O_RDONLY)
    guard fd >= 0 else { throw ValidationError("cannot open \(path)") }
    defer { close(fd) }
    var chunk = [UInt8](repeating: 0, count: chunkBytes)
    var done = 0
    while done < bytes {
        let n = chunk.withUnsafeMutableBytes { pread(fd, $0.baseAddress, min(chunkBytes, bytes - done), off_t(offset + done)) }
        if n <= 0 { break }
        done += n
    }
}
