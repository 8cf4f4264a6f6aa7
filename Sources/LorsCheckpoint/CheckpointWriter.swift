import Foundation
import LorsDistributed
import LorsNative
import LorsNN
import LorsOptim
import LorsTensor

/// Writes one checkpoint file (serial, or collectively with parallel HDF5).
///
/// Describe the contents with `add...` calls, then `write(metadata:optimizer:)` creates the file and does all the
/// I/O. In parallel mode every rank makes the same `add...` calls in the same order with the same dataset paths and
/// shapes (checked); only the shard ranges and values of `addShard` differ per rank.
///
/// - A *replicated* tensor (`add(_:tensor:)`, `addModel`, `addOptimizerState`) is held by every rank; exactly one
///   rank writes it, the ranks taking turns by a greedy size balance, so no rank writes everything.
/// - A *shard* (`addShard`) is this rank's contiguous flat range of a tensor (ZeRO-1 optimizer state): every rank
///   writes its own range, written as at most `2·ndim − 1` hyperslabs; the ranges of all ranks must tile the tensor.
///
/// Every dataset gets a `crc32` attribute (see `CRC32`), combined across ranks with `crc32_combine`. `/meta` gets the
/// run state, a manifest of all datasets (`datasets`: one `path<TAB>d0,d1,...` line each) and finally `complete = 1`.
///
///     let writer = CheckpointWriter(path: tmp, communicator: world)
///     writer.addModel(model)
///     try writer.addOptimizerState(optimizer, model: model)
///     try writer.write(metadata: meta, optimizer: OptimizerMetadata(describing: optimizer))
public final class CheckpointWriter {
    enum Source {
        case replicated(Tensor)
        case values([Float])
        case shard(range: Range<Int>, values: [Float])
    }

    struct Entry {
        let path: String
        let shape: [Int]
        let source: Source
        var count: Int { shape.reduce(1, *) }
    }

    /// The file written.
    public let path: String
    /// The ranks that write the file together (`LocalCommunicator`: one serial writer). It must share file access
    /// (`Communicator.sharesFileAccess`: MPI or one rank); in-process replicas write through `CheckpointDirectory`.
    public let communicator: any Communicator
    let faultInjection: FaultInjection?
    private var entries: [Entry] = []
    private var seen: Set<String> = []
    private var usageErrors: [CheckpointError] = []
    /// Wall seconds of each phase of the last `write` on this rank, in order: `agree` (usage checks, layout
    /// all-reduce), `create` (file and datasets), `data` (this rank's pieces into the file, up to the collective
    /// close of the datasets), `checksums` (waiting for the CRC thread after the last write), `metadata` (checksum
    /// all-reduce, attributes, manifest) and `close`. Flushing to disk is not part of `write` (see
    /// `CheckpointDirectory`); the write-back of the data has started during `data` (`WriteBehind`).
    public private(set) var phaseSeconds: [(phase: String, seconds: Double)] = []
    private var phaseStart: UInt64 = 0

    /// - Parameters:
    ///   - path: the file to create (truncated if it exists). `CheckpointDirectory` passes a `.tmp` name.
    ///   - communicator: the ranks of a collective parallel write (parallel HDF5 over its `mpi`); the default
    ///     `LocalCommunicator()` writes serially.
    ///   - faultInjection: a test fault (default: from `LORS_FAULT_INJECT`).
    public init(path: String, communicator: any Communicator = LocalCommunicator(),
                faultInjection: FaultInjection? = FaultInjection.fromEnvironment()) {
        self.path = path
        self.communicator = communicator
        self.faultInjection = faultInjection
    }

    /// Paths of the datasets described so far, in order.
    public var datasetPaths: [String] { entries.map(\.path) }

    // MARK: - Describing the contents

    /// A tensor every rank holds (one rank writes it).
    public func add(_ datasetPath: String, tensor: Tensor) {
        append(Entry(path: datasetPath, shape: tensor.shape, source: .replicated(tensor)))
    }

    /// Values every rank holds, at `shape` (one rank writes them).
    public func add(_ datasetPath: String, shape: [Int], values: [Float]) {
        guard values.count == shape.reduce(1, *) else {
            usageErrors.append(.invalidShards(file: path, dataset: datasetPath, detail: "\(values.count) values for shape \(shape)"))
            return
        }
        append(Entry(path: datasetPath, shape: shape, source: .values(values)))
    }

    /// This rank's part of a tensor of full shape `shape`: flat row-major elements `range` (possibly empty), `values`
    /// holding `range.count` elements. The ranges of all ranks must be disjoint and cover the tensor.
    public func addShard(_ datasetPath: String, shape: [Int], range: Range<Int>, values: [Float]) {
        let total = shape.reduce(1, *)
        guard range.lowerBound >= 0, range.upperBound <= total, values.count == range.count else {
            usageErrors.append(.invalidShards(file: path, dataset: datasetPath,
                                              detail: "range \(range) with \(values.count) values for shape \(shape) (\(total) elements)"))
            return
        }
        append(Entry(path: datasetPath, shape: shape, source: .shard(range: range, values: values)))
    }

    /// This rank's part of one optimizer state tensor of a parameter (ZeRO-1): `/optimizer/<parameter>/<state>`.
    public func addOptimizerStateShard(parameter: String, state: String, shape: [Int], range: Range<Int>, values: [Float]) {
        addShard(CheckpointLayout.optimizerPath(parameter: parameter, state: state), shape: shape, range: range, values: values)
    }

    /// Every unique parameter under `/model/<dotted name>` and every buffer under `/buffers/<dotted name>`.
    public func addModel(_ model: Module) {
        for (name, tensor) in model.namedParameters() { add(CheckpointLayout.modelPath(name), tensor: tensor) }
        var bufferNames = Set<String>()
        for (name, tensor) in model.namedBuffers() where bufferNames.insert(name).inserted {
            add(CheckpointLayout.bufferPath(name), tensor: tensor)
        }
    }

    /// The whole optimizer state (every rank holds all of it): `/optimizer/<dotted parameter name>/<state>` for each
    /// key of `stateDictionary()`, and `/optimizer/step`.
    public func addOptimizerState(_ optimizer: Optimizer, model: Module) {
        let mapping = OptimizerKeyMapping(optimizer: optimizer, model: model)
        let state = optimizer.stateDictionary()
        for key in state.keys.sorted() {
            let (parameter, stateName) = mapping.checkpointName(forKey: key)
            add(CheckpointLayout.optimizerPath(parameter: parameter, state: stateName), tensor: state[key]!)
        }
    }

    private func append(_ entry: Entry) {
        guard seen.insert(entry.path).inserted else {
            usageErrors.append(.invalidShards(file: path, dataset: entry.path, detail: "dataset added twice"))
            return
        }
        guard entry.path.hasPrefix("/"), !entry.path.hasPrefix(CheckpointLayout.metaGroup + "/") else {
            usageErrors.append(.invalidShards(file: path, dataset: entry.path, detail: "dataset paths are absolute and not under /meta"))
            return
        }
        entries.append(entry)
    }

    // MARK: - Writing

    /// Which rank writes each replicated entry: greedy by size, in entry order (identical on every rank).
    private func owners(size: Int) -> [Int] {
        var load = [Int](repeating: 0, count: size)
        return entries.map { entry in
            if case .shard = entry.source { return -1 }
            let rank = load.indices.min { load[$0] < load[$1] || (load[$0] == load[$1] && $0 < $1) }!
            load[rank] += Swift.max(entry.count, 1)
            return rank
        }
    }

    /// This rank's flat range of entry `index`.
    private func localRange(_ index: Int, owner: Int, rank: Int) -> Range<Int> {
        let entry = entries[index]
        switch entry.source {
        case .shard(let range, _): return range
        case .replicated, .values: return owner == rank ? 0..<entry.count : 0..<0
        }
    }

    /// Creates the file and writes everything; collective in parallel mode. The file is closed afterwards (also when
    /// an error is thrown).
    public func write(metadata: CheckpointMetadata, optimizer: OptimizerMetadata? = nil) throws {
        let collective = communicator
        try collective.checkFileAccess(file: path)
        let rank = collective.rank, size = collective.size
        let count = entries.count
        phaseSeconds = []
        phaseStart = DispatchTime.now().uptimeNanoseconds

        // 1. Local usage errors and the same description on every rank.
        try collective.agree(file: path) { if let first = usageErrors.first { throw first } }
        var signature: UInt64 = fnv1a64("\(count)")
        for entry in entries { signature = fnv1a64("\(entry.path)|\(entry.shape)|", continuing: signature) }
        let signed = Int64(bitPattern: signature)
        if try collective.allReduceMin(signed) != (try collective.allReduceMax(signed)) {
            throw CheckpointError.inconsistentRanks(file: path, detail: "the ranks described different datasets or shapes (\(count) on rank \(rank))")
        }

        // 2. Pieces (lower, count) of every entry on every rank; check that they tile every dataset.
        let owners = owners(size: size)
        var layout = [Int64](repeating: 0, count: count * size * 2)
        for index in 0..<count {
            let range = localRange(index, owner: owners[index], rank: rank)
            layout[(index * size + rank) * 2] = Int64(range.lowerBound)
            layout[(index * size + rank) * 2 + 1] = Int64(range.count)
        }
        try collective.allReduceSum(&layout)
        func piece(_ index: Int, _ r: Int) -> Range<Int> {
            let lower = Int(layout[(index * size + r) * 2])
            return lower..<(lower + Int(layout[(index * size + r) * 2 + 1]))
        }
        for index in 0..<count {
            let entry = entries[index]
            let ranges = (0..<size).map { piece(index, $0) }.filter { !$0.isEmpty }.sorted { $0.lowerBound < $1.lowerBound }
            var next = 0
            for range in ranges {
                guard range.lowerBound == next else {
                    throw CheckpointError.invalidShards(file: path, dataset: entry.path,
                                                       detail: range.lowerBound < next ? "ranges overlap at element \(range.lowerBound)"
                                                                                       : "elements \(next)..<\(range.lowerBound) are not covered by any rank")
                }
                next = range.upperBound
            }
            guard next == entry.count else {
                throw CheckpointError.invalidShards(file: path, dataset: entry.path, detail: "elements \(next)..<\(entry.count) are not covered by any rank")
            }
        }

        // 3. Create the file and the datasets (collective), write every rank's pieces straight from the tensors'
        //    memory (independent transfers: only the rank holding a piece writes it), checksum them on the other
        //    cores meanwhile, and start the disk write of each piece as soon as it is in the page cache (`WriteBehind`:
        //    the fsync that commits the file then waits for the last pieces only).
        endPhase("agree")
        let file: HDF5File
        do { file = try HDF5File(path: path, mode: .create, comm: communicator.mpi) } catch { throw wrap(error) }
        var handles: [HDF5Dataset] = []
        var closed = false
        defer {
            if !closed {
                for handle in handles { try? handle.close() }
                try? file.close()
            }
        }
        do {
            try file.createGroup(CheckpointLayout.metaGroup)
            for entry in entries { handles.append(try file.createOpenDataset(entry.path, shape: entry.shape)) }
            let ranges = (0..<count).map { localRange($0, owner: owners[$0], rank: rank) }
            endPhase("create")
            let local = try withHostBuffers(ranges) { buffers -> [UInt32] in
                let checksummer = BackgroundChecksums(buffers)
                defer { _ = checksummer.wait() }
                let writeBehind = WriteBehind(path: path)
                defer { writeBehind?.finish() }
                var written = 0
                for index in 0..<count where !ranges[index].isEmpty {
                    try handles[index].write(from: buffers[index].baseAddress!.assumingMemoryBound(to: Float.self),
                                             count: ranges[index].count, range: ranges[index])
                    if let writeBehind, let offset = handles[index].fileOffset {
                        let elementBytes = MemoryLayout<Float>.size
                        writeBehind.wrote(offset: offset + ranges[index].lowerBound * elementBytes, bytes: ranges[index].count * elementBytes)
                    }
                    written += 1
                    faultInjection?.check(rank: rank, datasetsWritten: written)
                }
                for handle in handles { try handle.close() }
                handles = []
                endPhase("data")
                defer { endPhase("checksums") }
                return checksummer.wait()
            }
            var checksums = [Int64](repeating: 0, count: count * size)
            for index in 0..<count { checksums[index * size + rank] = Int64(local[index]) }
            try collective.allReduceSum(&checksums)

            // 4. Checksum attributes, manifest and metadata (identical values on every rank).
            var manifest: [String] = []
            for index in 0..<count {
                let entry = entries[index]
                let parts = (0..<size).map { (range: piece(index, $0), crc: UInt32(truncatingIfNeeded: checksums[index * size + $0])) }
                    .filter { !$0.range.isEmpty }.sorted { $0.range.lowerBound < $1.range.lowerBound }
                var crc = CRC32.empty
                for part in parts { crc = CRC32.combine(crc, part.crc, secondLength: part.range.count * MemoryLayout<Float>.size) }
                try file.setAttribute(CheckpointLayout.checksumAttribute, .int64(Int64(crc)), on: entry.path)
                manifest.append(entry.path + "\t" + entry.shape.map(String.init).joined(separator: ","))
            }
            let meta = CheckpointLayout.metaGroup
            for (name, value) in metadata.attributes { try file.setAttribute(name, value, on: meta) }
            if let optimizer {
                try file.createGroup(CheckpointLayout.optimizerGroup)
                for (name, value) in optimizer.attributes { try file.setAttribute(name, value, on: CheckpointLayout.optimizerGroup) }
            }
            try file.setAttribute("checksum_algorithm", .string(CheckpointLayout.checksumAlgorithm), on: meta)
            try file.setAttribute("dataset_count", .int64(Int64(count)), on: meta)
            try file.setAttribute("datasets", .string(manifest.joined(separator: "\n")), on: meta)
            try file.setAttribute("complete", .int64(1), on: meta)
            endPhase("metadata")
            closed = true
            try file.close()
            endPhase("close")
        } catch {
            throw wrap(error)
        }
    }

    private func endPhase(_ name: String) {
        let now = DispatchTime.now().uptimeNanoseconds
        phaseSeconds.append((name, Double(now - phaseStart) / 1e9))
        phaseStart = now
    }

    /// Runs `body` with this rank's piece of every entry as host memory (empty for entries it does not write):
    /// arrays in place, tensors through `Tensor.withHostBuffers` (their own memory on a host-addressable backend,
    /// downloaded copies on others).
    private func withHostBuffers<R>(_ ranges: [Range<Int>], _ body: ([UnsafeRawBufferPointer]) throws -> R) throws -> R {
        var arrays: [[Float]] = []
        var tensors: [Tensor] = []
        var slots: [(array: Int, tensor: Int, bytes: Int)] = []
        for (entry, range) in zip(entries, ranges) {
            let bytes = range.count * MemoryLayout<Float>.size
            if range.isEmpty { slots.append((-1, -1, 0)); continue }
            switch entry.source {
            case .replicated(let tensor):
                tensors.append(tensor)
                slots.append((-1, tensors.count - 1, bytes))
            case .values(let values), .shard(_, let values):
                arrays.append(values)
                slots.append((arrays.count - 1, -1, bytes))
            }
        }
        // Pin every array's storage for the duration of `body` (nested withUnsafeBytes).
        var pinned = [UnsafeRawPointer?](repeating: nil, count: arrays.count)
        return try Tensor.withHostBuffers(tensors) { tensorBuffers in
            func pin(_ index: Int) throws -> R {
                if index == arrays.count {
                    return try body(slots.map { slot in
                        let base = slot.array >= 0 ? pinned[slot.array]
                            : slot.tensor >= 0 ? UnsafeRawPointer(tensorBuffers[slot.tensor].baseAddress) : nil
                        return UnsafeRawBufferPointer(start: slot.bytes > 0 ? base : nil, count: slot.bytes)
                    })
                }
                return try arrays[index].withUnsafeBytes { bytes in
                    pinned[index] = bytes.baseAddress
                    return try pin(index + 1)
                }
            }
            return try pin(0)
        }
    }

    private func wrap(_ error: Error) -> Error {
        if let native = error as? NativeError { return CheckpointError.native(file: path, error: native) }
        return error
    }
}

/// CRC-32s of a set of buffers computed on a background thread (with `CRC32.checksums(of:)` on all cores) while
/// the caller does I/O. `wait()` must be called before the buffers go away; it may be called more than once.
final class BackgroundChecksums: @unchecked Sendable {
    private let group = DispatchGroup()
    private var result: [UInt32] = []

    init(_ buffers: [UnsafeRawBufferPointer]) {
        let memory = UncheckedBuffers(value: buffers)
        DispatchQueue.global(qos: .userInitiated).async(group: group) { [self] in
            result = CRC32.checksums(of: memory.value)
        }
    }

    func wait() -> [UInt32] {
        group.wait()
        return result
    }
}

/// Buffers handed to a checksum thread; the caller keeps the memory valid until the checksums are waited for.
struct UncheckedBuffers: @unchecked Sendable {
    let value: [UnsafeRawBufferPointer]
}

