import Foundation
import LorsDistributed
import LorsNative
import LorsNN
import LorsOptim
import LorsTensor

/// One dataset of a checkpoint as listed in its manifest.
public struct CheckpointDatasetInfo: Equatable, Sendable {
    /// Absolute path inside the file (`/model/head.weight`).
    public var path: String
    /// Full logical shape.
    public var shape: [Int]
    /// Element count.
    public var count: Int { shape.reduce(1, *) }
}

/// Reads a checkpoint written by `CheckpointWriter`, serially or collectively on any number of ranks.
///
/// Opening checks the file is a complete LORS checkpoint (`/meta` with `format_version` ≤ the current one and
/// `complete = 1`) and reads the metadata and manifest. Whole-dataset reads verify the dataset's CRC-32;
/// `verify()` checks every dataset (split across ranks in parallel mode).
///
/// In parallel mode (an MPI `communicator` of several ranks) every method is collective: all ranks call it in the same order; the `range:` of
/// `read` may differ per rank, so a rank can read any part of any tensor (ZeRO-1 state re-partitioned for M ranks).
public final class CheckpointReader {
    /// The file's path.
    public let path: String
    /// The ranks that read the file together (`LocalCommunicator`: one serial reader). It must share file access
    /// (`Communicator.sharesFileAccess`: MPI or one rank).
    public let communicator: any Communicator
    /// The run state from `/meta`.
    public let metadata: CheckpointMetadata
    /// The optimizer's hyper-parameters from `/optimizer`, if stored.
    public let optimizerMetadata: OptimizerMetadata?
    /// Every dataset the writer wrote, in write order.
    public let datasets: [CheckpointDatasetInfo]
    let file: HDF5File
    private var collective: any Communicator { communicator }
    private let faultInjection: FaultInjection?
    private var datasetsRead = 0

    /// Opens `path` read-only (collectively over an MPI `communicator`). `faultInjection`: a `checkpoint-read` test
    /// fault (default: from `LORS_FAULT_INJECT`).
    public init(path: String, communicator: any Communicator = LocalCommunicator(),
                faultInjection: FaultInjection? = FaultInjection.fromEnvironment(site: FaultInjection.readSite)) throws {
        self.path = path
        self.communicator = communicator
        self.faultInjection = faultInjection
        try communicator.checkFileAccess(file: path)
        guard FileManager.default.fileExists(atPath: path) else {
            throw CheckpointError.io(path: path, operation: "open", detail: "no such file")
        }
        do {
            file = try HDF5File(path: path, mode: .readOnly, comm: communicator.mpi)
        } catch {
            throw classifyOpenError(error, file: path)
        }
        do {
            let meta = CheckpointLayout.metaGroup
            guard try file.exists(meta), try file.hasAttribute("format_version", on: meta) else {
                throw CheckpointError.notACheckpoint(file: path, detail: "no /meta group with a format_version attribute")
            }
            let version = try file.int64Attribute("format_version", of: meta)
            guard version >= 1, version <= CheckpointLayout.formatVersion else {
                throw CheckpointError.notACheckpoint(file: path, detail: "format_version \(version) is not supported (this build reads 1...\(CheckpointLayout.formatVersion))")
            }
            guard try file.hasAttribute("complete", on: meta), try file.int64Attribute("complete", of: meta) == 1 else {
                throw CheckpointError.truncated(file: path, detail: "the write did not finish (no complete=1 on /meta)")
            }
            metadata = try CheckpointMetadata.read(from: file)
            optimizerMetadata = try OptimizerMetadata.read(from: file)
            let manifest = try file.stringAttribute("datasets", of: meta)
            datasets = manifest.split(separator: "\n").map { line in
                let parts = line.split(separator: "\t", omittingEmptySubsequences: false)
                let shape = parts.count > 1 ? parts[1].split(separator: ",").compactMap { Int($0) } : []
                return CheckpointDatasetInfo(path: String(parts[0]), shape: shape)
            }
            let expectedCount = try file.int64Attribute("dataset_count", of: meta)
            guard expectedCount == datasets.count else {
                throw CheckpointError.notACheckpoint(file: path, detail: "manifest lists \(datasets.count) datasets, dataset_count says \(expectedCount)")
            }
        } catch {
            try? file.close()
            if let native = error as? NativeError { throw CheckpointError.native(file: path, error: native) }
            throw error
        }
    }

    deinit { try? file.close() }

    /// Closes the file (collective in parallel mode).
    public func close() throws {
        do { try file.close() } catch { throw wrapped(error) }
    }

    /// The manifest entry for `datasetPath`, if listed.
    public func info(_ datasetPath: String) -> CheckpointDatasetInfo? { datasets.first { $0.path == datasetPath } }

    /// Whether a dataset exists in the file.
    public func contains(_ datasetPath: String) throws -> Bool {
        do { return try file.exists(datasetPath) } catch { throw wrapped(error) }
    }

    /// The stored shape of a dataset; `missingDataset` if absent.
    public func shape(of datasetPath: String) throws -> [Int] {
        try requireDataset(datasetPath)
        do { return try file.shape(of: datasetPath) } catch { throw wrapped(error) }
    }

    /// The stored CRC-32 of a dataset.
    public func storedChecksum(_ datasetPath: String) throws -> UInt32 {
        do {
            guard try file.hasAttribute(CheckpointLayout.checksumAttribute, on: datasetPath) else {
                throw CheckpointError.missingChecksum(file: path, dataset: datasetPath)
            }
            return UInt32(truncatingIfNeeded: try file.int64Attribute(CheckpointLayout.checksumAttribute, of: datasetPath))
        } catch { throw wrapped(error) }
    }

    /// Reads a whole dataset (checksum verified) or the flat row-major elements `range` of it (not verified: call
    /// `verify()` once to check the file). Collective in parallel mode; each rank may pass its own range.
    public func read(_ datasetPath: String, range: Range<Int>? = nil) throws -> [Float] {
        try requireDataset(datasetPath)
        let values: [Float]
        do { values = try file.readFloats(datasetPath, range: range) } catch { throw wrapped(error) }
        if range == nil {
            let stored = try storedChecksum(datasetPath)
            let computed = CRC32.checksum(values)
            guard stored == computed else {
                throw CheckpointError.checksumMismatch(file: path, dataset: datasetPath, stored: stored, computed: computed)
            }
        }
        return values
    }

    /// Reads a whole dataset after checking it has `expectedShape` (`shapeMismatch` naming both shapes otherwise).
    public func read(_ datasetPath: String, expectedShape: [Int]) throws -> [Float] {
        let found = try shape(of: datasetPath)
        guard found == expectedShape else {
            throw CheckpointError.shapeMismatch(file: path, dataset: datasetPath, expected: expectedShape, found: found)
        }
        return try read(datasetPath)
    }

    /// Checks that every dataset of the manifest exists with its listed shape and matches its checksum; throws the
    /// first problem. In parallel mode the datasets are split across the ranks and the outcome is shared.
    public func verify() throws {
        let problems = try verificationProblems()
        if let first = problems.first { throw first }
    }

    /// Every problem `verify()` would report, in manifest order.
    public func verificationProblems() throws -> [CheckpointError] {
        let rank = collective.rank, size = collective.size
        var structural: [CheckpointError?] = []
        for info in datasets {
            do {
                try requireDataset(info.path)
                let found = try file.shape(of: info.path)
                if found != info.shape {
                    structural.append(.shapeMismatch(file: path, dataset: info.path, expected: info.shape, found: found))
                } else if !(try file.hasAttribute(CheckpointLayout.checksumAttribute, on: info.path)) {
                    structural.append(.missingChecksum(file: path, dataset: info.path))
                } else {
                    structural.append(nil)
                }
            } catch let error as CheckpointError {
                structural.append(error)
            } catch {
                throw wrapped(error)
            }
        }
        // Computed checksums: dataset i is read by rank i % size (independent reads into two reused buffers; the
        // CRC of one runs on another core while the next is read).
        var computed = [Int64](repeating: 0, count: datasets.count)
        let mine = datasets.indices.filter { structural[$0] == nil && $0 % size == rank }
        let largest = mine.map { datasets[$0].count }.max() ?? 0
        let buffers = (0..<2).map { _ in UnsafeMutableBufferPointer<Float>.allocate(capacity: Swift.max(largest, 1)) }
        defer { buffers.forEach { $0.deallocate() } }
        let pipeline = ChecksumPipeline(slots: buffers.count)
        defer { _ = pipeline.wait() }
        var turn = 0
        // A read error stops this rank's reads but not its part in the collective opens and closes; the ranks then
        // agree on it, so every rank throws and none waits for another.
        var readError: (index: Int, error: Error)?
        for (index, info) in datasets.enumerated() where structural[index] == nil {
            do {
                let handle = try file.openDatasetHandle(info.path)
                if index % size == rank, readError == nil {
                    let slot = turn % buffers.count
                    turn += 1
                    pipeline.acquire(slot)
                    do {
                        try readWhole(handle, into: buffers[slot].baseAddress!)
                        pipeline.submit(index, UnsafeRawBufferPointer(start: buffers[slot].baseAddress, count: info.count * MemoryLayout<Float>.size),
                                        slot: slot)
                    } catch {
                        pipeline.release(slot)
                        readError = (index, wrapped(error))
                    }
                }
                try handle.close()
            } catch {
                throw wrapped(error)
            }
        }
        for (index, crc) in pipeline.wait() { computed[index] = Int64(crc) }
        try collective.allReduceSum(&computed)
        if let failure = try agreeOnReadError(readError) { throw failure.error }
        var problems: [CheckpointError] = []
        for (index, info) in datasets.enumerated() {
            if let problem = structural[index] { problems.append(problem); continue }
            let stored = try storedChecksum(info.path)
            let crc = UInt32(truncatingIfNeeded: computed[index])
            if stored != crc { problems.append(.checksumMismatch(file: path, dataset: info.path, stored: stored, computed: crc)) }
        }
        return problems
    }

    // MARK: - Model and optimizer

    /// Loads every parameter and buffer of `model` from `/model` and `/buffers`, read straight into the model's
    /// tensors. Presence and shapes (and with `strict`, datasets under `/model` that the model lacks) are checked
    /// before anything is read, so a model that does not fit the checkpoint is left unchanged; a damaged dataset
    /// (checksum mismatch, read error) is an error after the reads, the model then holding part of the file.
    /// Collective in parallel mode (each rank checksums its share of the datasets; see `readVerified`).
    public func loadModel(into model: Module, strict: Bool = true) throws {
        var targets: [Tensor] = []
        var requests: [(path: String, shape: [Int])] = []
        for (name, tensor) in model.namedParameters() {
            targets.append(tensor)
            requests.append((CheckpointLayout.modelPath(name), tensor.shape))
        }
        var bufferNames = Set<String>()
        for (name, tensor) in model.namedBuffers() where bufferNames.insert(name).inserted {
            targets.append(tensor)
            requests.append((CheckpointLayout.bufferPath(name), tensor.shape))
        }
        if strict {
            let known = Set(model.namedParameters().map { CheckpointLayout.modelPath($0.0) })
            let extra = datasets.map(\.path).filter { $0.hasPrefix(CheckpointLayout.modelGroup + "/") && !known.contains($0) }
            if !extra.isEmpty { throw CheckpointError.unexpectedDatasets(file: path, datasets: extra) }
        }
        // Into the model's own tensors: no new memory (first touch of new pages is the dearest part of a load).
        let loaded = try readVerified(requests, into: targets)
        for (tensor, values) in zip(targets, loaded) where values !== tensor { tensor.assign(values!) }
    }

    /// The datasets under `/optimizer` as (dotted parameter name or nil for the global step, state name).
    public var optimizerDatasets: [(parameter: String?, state: String, info: CheckpointDatasetInfo)] {
        let prefix = CheckpointLayout.optimizerGroup + "/"
        return datasets.compactMap { info in
            guard info.path.hasPrefix(prefix) else { return nil }
            let rest = String(info.path.dropFirst(prefix.count))
            guard let slash = rest.lastIndex(of: "/") else { return (nil, rest, info) }
            return (String(rest[..<slash]), String(rest[rest.index(after: slash)...]), info)
        }
    }

    /// Loads the whole optimizer state (every tensor read whole and verified) into `optimizer`, whose parameters
    /// belong to `model`. State tensors the optimizer already holds at the stored shape are read into in place
    /// (no new memory); the others are new. The optimizer's own checks (unknown or missing keys, shapes) surface as
    /// `optimizerState`, shape differences of known parameters as `shapeMismatch` naming the dataset.
    public func loadOptimizer(_ optimizer: Optimizer, model: Module) throws {
        let mapping = OptimizerKeyMapping(optimizer: optimizer, model: model)
        let parametersByKey = Dictionary(optimizer.parameters.enumerated().map { index, p in
            (p.name.isEmpty ? "param.\(index)" : p.name, p) }, uniquingKeysWith: { first, _ in first })
        var keys: [String] = []
        var requests: [(path: String, shape: [Int])] = []
        for (parameter, stateName, info) in optimizerDatasets {
            let key: String
            var expected = info.shape
            if let parameter {
                let prefix = mapping.keyByDottedName[parameter] ?? parameter
                key = prefix + "/" + stateName
                if let p = parametersByKey[prefix], stateName != "step" { expected = p.shape }
            } else {
                key = stateName
            }
            keys.append(key)
            requests.append((info.path, expected))
        }
        // State the optimizer already holds at the same shape is overwritten in place (after every checksum matched).
        let current = optimizer.stateDictionary()
        let destinations = zip(keys, requests).map { key, request in current[key].flatMap { $0.shape == request.shape ? $0 : nil } }
        let loaded = try readVerified(requests, into: destinations).map { $0! }
        let state = Dictionary(zip(keys, loaded), uniquingKeysWith: { _, last in last })
        do {
            try optimizer.loadStateDictionary(adopting: state)
        } catch {
            throw CheckpointError.optimizerState(file: path, detail: "\(error)")
        }
    }

    // MARK: - Internals

    /// Whole datasets read by the ranks that need them, each checked like `read(_:expectedShape:)` (presence, shape,
    /// checksum): `owner` nil — every rank gets the tensor; `owner` r — only rank r reads it (the others get nil),
    /// e.g. the ZeRO-1 optimizer state a rank owns. Every rank must pass the same list (paths, shapes, owners).
    /// Each dataset's checksum is computed by one rank only (its owner; the replicated ones split by bytes) and the
    /// ranks agree on the verdict, so a damaged dataset fails the load on every rank, naming it. Collective in
    /// parallel mode; serially every tensor is returned.
    public func readTensors(_ requests: [(path: String, shape: [Int], owner: Int?)]) throws -> [Tensor?] {
        try readVerified(requests.map { ($0.path, $0.shape) }, owners: requests.map(\.owner))
    }

    /// Whole datasets, in request order, each checked like `read(_:expectedShape:)` (presence, shape, checksum);
    /// the first problem in request order is thrown, on every rank. `owners`: see `readTensors` (nil: every rank
    /// gets every tensor). `destinations`: existing tensors to read into instead of new ones (nil entries, or ones
    /// of another element count, get a new tensor). Presence and shapes are checked before anything is read; a
    /// damaged dataset (checksum mismatch, read error) is reported after the reads, so the destinations may then
    /// hold some of the file's values.
    ///
    /// How (CPU tensors): independent reads straight into the tensors' memory in file order, the kernel reading the
    /// file ahead, checksums on another core while the next dataset is read. Each dataset's checksum is computed by
    /// one rank only — its owner, or for the datasets every rank reads, the rank whose contiguous part (by bytes,
    /// in file order) holds it — and the computed checksums are summed over the ranks (one small all-reduce): the
    /// CRC work is divided instead of repeated, and the ranks of a node read the same pages at about the same time,
    /// so the disk delivers them once. A read error on any rank is made collective: every rank throws (the failing
    /// rank its own error, the others `failedOnAnotherRank` with its message); none waits for another. Collective
    /// in parallel mode.
    func readVerified(_ requests: [(path: String, shape: [Int])], owners: [Int?]? = nil,
                      into destinations: [Tensor?]? = nil) throws -> [Tensor?] {
        let rank = collective.rank, size = collective.size
        func wanted(_ index: Int) -> Bool { owners?[index].map { $0 == rank } ?? true }
        var stored: [UInt32] = []
        var handles: [HDF5Dataset] = []
        defer { for handle in handles { try? handle.close() } }
        // Pass 1 (collective, identical on every rank): presence, shape, stored checksum and an open handle of each
        // dataset, up to the first problem.
        // Each dataset is opened once; its shape and checksum attribute come from the open handle.
        var structuralError: Error?
        for request in requests {
            var opened: HDF5Dataset?
            do {
                try requireDataset(request.path)
                let handle: HDF5Dataset
                do { handle = try file.openDatasetHandle(request.path) } catch { throw wrapped(error) }
                opened = handle
                guard handle.shape == request.shape else {
                    throw CheckpointError.shapeMismatch(file: path, dataset: request.path, expected: request.shape, found: handle.shape)
                }
                let crc: Int64?
                do { crc = try handle.int64Attribute(CheckpointLayout.checksumAttribute) } catch { throw wrapped(error) }
                guard let crc else { throw CheckpointError.missingChecksum(file: path, dataset: request.path) }
                stored.append(UInt32(truncatingIfNeeded: crc))
                handles.append(handle)
            } catch {
                try? opened?.close()
                structuralError = error
                break
            }
        }
        if let structuralError, destinations != nil {
            throw structuralError   // a request list that does not fit the file: destinations stay untouched
        }
        let count = handles.count
        let offsets = handles.map(\.fileOffset)
        let fileOrder = (0..<count).sorted { (offsets[$0] ?? 0, $0) < (offsets[$1] ?? 0, $1) }
        let verifier = Self.checkingRanks(bytes: handles.map { $0.count * MemoryLayout<Float>.size }, fileOrder: fileOrder,
                                          owners: owners, size: size)
        let mine = fileOrder.filter(wanted)
        // Ask the kernel to read the datasets ahead (in file order, from a background thread) while this thread
        // copies, and the CRC thread checksums, the ones already read.
        let prefetch = Prefetch(path: path, extents: mine.compactMap { index in
            offsets[index].map { ($0, handles[index].count * MemoryLayout<Float>.size) }
        })
        defer { prefetch.stop() }
        // Pass 2: read each dataset this rank needs; the ones it checks are checksummed on another core while the
        // next is read. A read error ends the loop (the ranks agree on it below).
        // The destinations are taken (or allocated) first and read through host views of all of them at once: the
        // tensors' own memory on a host-addressable backend, host copies uploaded afterwards on others.
        var tensors = [Tensor?](repeating: nil, count: requests.count)
        for index in mine {
            if let target = destinations?[index], target.count == handles[index].count { tensors[index] = target } else {
                tensors[index] = Tensor(uninitialized: requests[index].shape)
            }
        }
        var readError: (index: Int, error: Error)?
        let checksums = Tensor.withMutableHostBuffers(mine.map { tensors[$0]! }) { buffers -> [Int: UInt32] in
            let pipeline = ChecksumPipeline(slots: 0)
            for (position, index) in mine.enumerated() {
                let buffer = buffers[position]
                do {
                    try readWhole(handles[index], into: buffer.baseAddress!)
                } catch {
                    readError = (index, wrapped(error))
                    break
                }
                if verifier[index] == rank { pipeline.submit(index, UnsafeRawBufferPointer(buffer)) }
            }
            return pipeline.wait()   // the CRC thread reads the buffers: done before they go away
        }
        // The verdict, identical on every rank: the computed checksums (CRC + 1; 0 = not computed) summed over the
        // ranks, then the first read error (by dataset index, then rank), then the structural problem.
        var computed = [Int64](repeating: 0, count: count)
        for (index, crc) in checksums { computed[index] = Int64(crc) + 1 }
        try collective.allReduceSum(&computed)
        let firstError = try agreeOnReadError(readError)
        for index in 0..<(firstError?.index ?? count) where computed[index] != 0 {
            let crc = UInt32(truncatingIfNeeded: computed[index] - 1)
            if crc != stored[index] {
                throw CheckpointError.checksumMismatch(file: path, dataset: requests[index].path, stored: stored[index], computed: crc)
            }
        }
        if let firstError { throw firstError.error }
        if let structuralError { throw structuralError }
        return tensors
    }

    /// Reads a whole dataset through its handle into `destination` (counting reads for the `checkpoint-read` fault).
    private func readWhole(_ handle: HDF5Dataset, into destination: UnsafeMutablePointer<Float>) throws {
        if let failure = faultInjection?.readFailure(rank: collective.rank, datasetsRead: datasetsRead, file: path, dataset: handle.path) {
            throw failure
        }
        try handle.read(into: destination, count: handle.count)
        datasetsRead += 1
    }

    /// The rank that checksums each dataset: its owner, or for the datasets every rank reads, the rank whose
    /// contiguous part (by bytes, in file order; rank r gets the r-th of `size` equal parts) holds the dataset's
    /// middle byte.
    static func checkingRanks(bytes: [Int], fileOrder: [Int], owners: [Int?]?, size: Int) -> [Int] {
        var verifier = [Int](repeating: 0, count: bytes.count)
        let shared = fileOrder.filter { owners?[$0] == nil }
        let total = shared.reduce(0) { $0 + bytes[$1] }
        var running = 0
        for index in shared {
            verifier[index] = total == 0 ? 0 : Swift.min(size - 1, (running + bytes[index] / 2) * size / total)
            running += bytes[index]
        }
        for index in bytes.indices { if let owner = owners?[index] { verifier[index] = owner } }
        return verifier
    }

    /// Makes a read error collective: nil when no rank failed; otherwise the first failure (lowest dataset index,
    /// then lowest rank) as the error this rank throws — its own error on the failing rank, `failedOnAnotherRank`
    /// with that rank's message elsewhere.
    private func agreeOnReadError(_ local: (index: Int, error: Error)?) throws -> (index: Int, error: Error)? {
        let size = Int64(collective.size)
        let key = local.map { Int64($0.index) * size + Int64(collective.rank) } ?? Int64.max
        let first = try collective.allReduceMin(key)
        guard first != Int64.max else { return nil }
        let index = Int(first / size), failing = Int(first % size)
        let message = try collective.broadcast(local.map { "\($0.error)" } ?? "", root: failing)
        if failing == collective.rank, let local { return (index, local.error) }
        return (index, CheckpointError.failedOnAnotherRank(file: path, detail: "rank \(failing): \(message)"))
    }

    func requireDataset(_ datasetPath: String) throws {
        let exists: Bool
        do { exists = try file.exists(datasetPath) } catch { throw wrapped(error) }
        guard exists else { throw CheckpointError.missingDataset(file: path, dataset: datasetPath) }
    }

    func wrapped(_ error: Error) -> Error {
        if let native = error as? NativeError {
            let message = native.message.lowercased()
            if message.contains("truncated") || message.contains("addr overflow") || message.contains("eof") {
                return CheckpointError.truncated(file: path, detail: native.description)
            }
            return CheckpointError.native(file: path, error: native)
        }
        return error
    }
}

/// CRC-32s computed on one background thread while the caller reads the next buffer. Optional reusable buffer
/// slots: `acquire(slot)` before filling a slot's buffer; the slot is released when its checksum is done.
final class ChecksumPipeline: @unchecked Sendable {
    private let queue = DispatchQueue(label: "lors.checkpoint.crc", qos: .userInitiated)
    private let group = DispatchGroup()
    private var results: [Int: UInt32] = [:]
    private let slots: [DispatchSemaphore]

    init(slots: Int) { self.slots = (0..<slots).map { _ in DispatchSemaphore(value: 1) } }

    func acquire(_ slot: Int) { slots[slot].wait() }
    func release(_ slot: Int) { slots[slot].signal() }

    /// Checksums `buffer` as item `index` (the buffer must stay valid until `wait()`), then releases `slot`.
    func submit(_ index: Int, _ buffer: UnsafeRawBufferPointer, slot: Int? = nil) {
        let memory = UncheckedBuffers(value: [buffer])
        queue.async(group: group) { [self] in
            // One thread: at several GB/s it keeps up with the reads, and leaves the other core to them.
            results[index] = CRC32.checksum(memory.value[0])
            if let slot { slots[slot].signal() }
        }
    }

    /// Every checksum submitted so far, by index.
    func wait() -> [Int: UInt32] {
        group.wait()
        return queue.sync { results }
    }
}

/// `posix_fadvise(WILLNEED)` over file extents, in order, 8 MiB at a time, from a background thread: the kernel
/// reads them from the disk while the caller processes the earlier ones.
final class Prefetch: @unchecked Sendable {
    private let group = DispatchGroup()
    private let lock = NSLock()
    private var stopped = false

    init(path: String, extents: [(offset: Int, bytes: Int)]) {
        guard !extents.isEmpty else { return }
        DispatchQueue.global(qos: .userInitiated).async(group: group) { [self] in
            let fd = open(path, O_RDONLY)
            guard fd >= 0 else { return }
            defer { close(fd) }
            let step = 8 << 20
            for extent in extents {
                var offset = extent.offset
                let end = extent.offset + extent.bytes
                while offset < end {
                    if isStopped { return }
                    let length = Swift.min(step, end - offset)
                    _ = posix_fadvise(fd, off_t(offset), off_t(length), Int32(POSIX_FADV_WILLNEED))
                    offset += length
                }
            }
        }
    }

    private var isStopped: Bool { lock.lock(); defer { lock.unlock() }; return stopped }

    /// Stops issuing hints and waits for the thread.
    func stop() {
        lock.lock()
        stopped = true
        lock.unlock()
        group.wait()
    }
}
