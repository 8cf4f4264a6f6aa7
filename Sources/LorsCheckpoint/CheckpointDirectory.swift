import Foundation
import LorsDistributed
import LorsNative

/// Where to resume from (`--resume auto|none|PATH`).
public enum ResumeMode: Equatable, Sendable {
    /// The work dir's `latest`, falling back to the newest older complete checkpoint if it is damaged; a fresh start
    /// when the work dir has no checkpoint.
    case auto
    /// Start fresh.
    case none
    /// This file (an error if it is missing or damaged).
    case path(String)

    /// Parses the command-line spelling: `auto`, `none`, or anything else as a path.
    public init(argument: String) {
        switch argument {
        case "auto": self = .auto
        case "none": self = .none
        default: self = .path(argument)
        }
    }
}

/// The checkpoint a run resumes from.
public struct ResumeChoice: Equatable, Sendable {
    /// Path of the checkpoint file.
    public var path: String
    /// Its step (from `/meta`).
    public var step: Int
    /// Warnings raised on the way (a damaged `latest` that was skipped, ...).
    public var warnings: [String]
}

/// What `CheckpointDirectory.save` did.
public struct CheckpointCommit: Equatable, Sendable {
    /// Final path of the new checkpoint.
    public var path: String
    /// Whether `best` now names it.
    public var isBest: Bool
    /// Files removed by `keep_last` rotation (names).
    public var removed: [String]
}

/// The checkpoints of a work dir (`WORK_DIR/checkpoints/step_<8 digits>.h5`, `latest`, `best`) with atomic commits,
/// rotation and resume resolution.
///
/// A save writes `<name>.h5.tmp`, closes it, fsyncs the file and the directory, re-opens it and verifies every
/// checksum, renames it to `<name>.h5`, fsyncs the directory, then replaces `latest` (and `best` when the metric
/// improved) by write-temp + fsync + rename, and finally applies `keep_last`. A crash at any point leaves the previous
/// checkpoint and pointers intact; a stale `.tmp` is overwritten by the next save of that step and removed by rotation.
///
/// With a communicator of several ranks `save` and `resolve` are collective and every rank sees the same outcome:
/// - MPI ranks (`Communicator.mpi`) write the file together (parallel HDF5); rank 0 does the renames and pointer
///   files after a barrier.
/// - In-process replicas (a `SimulatedWorld`; the HDF5 library is not thread-safe) hand their parts to rank 0 in
///   `describe` (see `fileCommunicator`), and rank 0 alone writes, verifies and commits the file, serially. The file
///   is the same as the one MPI ranks of that world size write.
public final class CheckpointDirectory {
    /// The work dir.
    public let workDirectory: String
    /// The ranks of the run (`LocalCommunicator` for one process).
    public let communicator: any Communicator
    /// The ranks that open the checkpoint files together: `communicator` when it shares file access (MPI, or one
    /// rank), else `LocalCommunicator()` on rank 0 (in-process replicas). A `describe` closure of `save` whose ranks
    /// hold different parts (ZeRO-1 shards) and whose writer's communicator is smaller than `communicator` gathers
    /// the parts to rank 0, which describes the whole file; the other ranks' writers are not written.
    public let fileCommunicator: any Communicator
    /// Receives warnings (rank 0 only); default: stderr.
    public var warn: (String) -> Void
    private var collective: any Communicator { communicator }
    /// Whether this rank opens the files (every rank under MPI, rank 0 of in-process replicas).
    public var opensFiles: Bool { communicator.sharesFileAccess || communicator.isRoot }

    /// `WORK_DIR/checkpoints`.
    public var directory: String { (workDirectory as NSString).appendingPathComponent("checkpoints") }

    public init(workDirectory: String, communicator: any Communicator = LocalCommunicator(),
                warn: @escaping (String) -> Void = { FileHandle.standardError.write(Data("warning: \($0)\n".utf8)) }) {
        self.workDirectory = workDirectory
        self.communicator = communicator
        self.fileCommunicator = communicator.sharesFileAccess ? communicator : LocalCommunicator()
        self.warn = warn
    }

    // MARK: - Names

    /// `step_<8-digit step>.h5`.
    public static func fileName(step: Int) -> String {
        let digits = String(step)
        return "step_" + String(repeating: "0", count: Swift.max(0, 8 - digits.count)) + digits + ".h5"
    }

    /// The step of a `step_<digits>.h5` name, nil for other names.
    public static func step(fromFileName name: String) -> Int? {
        guard name.hasPrefix("step_"), name.hasSuffix(".h5") else { return nil }
        let digits = name.dropFirst(5).dropLast(3)
        guard !digits.isEmpty, digits.allSatisfy(\.isNumber) else { return nil }
        return Int(digits)
    }

    /// Full path of a file in the checkpoints directory.
    public func path(of name: String) -> String { (directory as NSString).appendingPathComponent(name) }

    /// The file name `latest` holds, if the pointer exists.
    public func latestName() -> String? { readPointer("latest") }
    /// The file name `best` holds, if the pointer exists.
    public func bestName() -> String? { readPointer("best") }

    /// Complete checkpoint files (by name pattern, not verified), oldest first.
    public func checkpointFiles() -> [(step: Int, name: String)] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        return names.compactMap { name in Self.step(fromFileName: name).map { ($0, name) } }.sorted { $0.step < $1.step }
    }

    // MARK: - Saving

    /// Writes, verifies and commits the checkpoint of `metadata.step`. `describe` adds the contents to the writer
    /// (`addModel`, `addOptimizerState`, shards...). `best` moves here when `metadata.evalMetric` beats the current
    /// best's (`higherIsBetter`), or when there is no readable best. `keepLast` (≥ 1) removes the oldest checkpoints
    /// beyond that many, never the ones `latest` or `best` name. Collective; `describe` runs on every rank, with a
    /// writer over `fileCommunicator`.
    @discardableResult
    public func save(metadata: CheckpointMetadata, optimizer: OptimizerMetadata? = nil, higherIsBetter: Bool = true,
                     keepLast: Int? = nil, faultInjection: FaultInjection? = FaultInjection.fromEnvironment(),
                     describe: (CheckpointWriter) throws -> Void) throws -> CheckpointCommit {
        let name = Self.fileName(step: metadata.step)
        let finalPath = path(of: name), temporaryPath = finalPath + ".tmp"
        try collective.agree(file: temporaryPath) {
            if collective.isRoot { try createDirectory() }
        }
        let writer = CheckpointWriter(path: temporaryPath, communicator: fileCommunicator, faultInjection: faultInjection)
        try collective.agree(file: temporaryPath) { try describe(writer) }
        if communicator.sharesFileAccess {
            try writer.write(metadata: metadata, optimizer: optimizer)
            try collective.agree(file: temporaryPath) {
                try fsyncPath(temporaryPath)
                if collective.isRoot { try fsyncPath(directory, directory: true) }
            }
            let reader = try CheckpointReader(path: temporaryPath, communicator: communicator)
            try reader.verify()
            try reader.close()
        } else {
            // In-process replicas: rank 0 alone touches the file.
            try collective.agree(file: temporaryPath) {
                guard collective.isRoot else { return }
                try writer.write(metadata: metadata, optimizer: optimizer)
                try fsyncPath(temporaryPath)
                try fsyncPath(directory, directory: true)
                let reader = try CheckpointReader(path: temporaryPath)
                try reader.verify()
                try reader.close()
            }
        }
        try collective.barrier()

        var outcome = (isBest: false, removed: [String]())
        try collective.agree(file: finalPath) {
            guard collective.isRoot else { return }
            try rename(temporaryPath, finalPath)
            try fsyncPath(directory, directory: true)
            try writePointer("latest", name)
            if let metric = metadata.evalMetric, improves(metric, higherIsBetter: higherIsBetter) {
                try writePointer("best", name)
                outcome.isBest = true
            }
            if let keepLast { outcome.removed = try rotate(keepLast: keepLast) }
        }
        // Every rank reports rank 0's view.
        let isBest = try collective.broadcast(outcome.isBest ? "1" : "0", root: 0) == "1"
        let removed = try collective.broadcast(outcome.removed.joined(separator: "\n"), root: 0).split(separator: "\n").map(String.init)
        return CheckpointCommit(path: finalPath, isBest: isBest, removed: removed)
    }

    /// Removes the oldest `step_*.h5` beyond the newest `keepLast`, keeping whatever `latest` and `best` name, and
    /// stale `*.h5.tmp` files. Returns the removed names. Not collective: call it on one rank.
    @discardableResult
    public func rotate(keepLast: Int) throws -> [String] {
        precondition(keepLast >= 1, "keep_last must be at least 1, got \(keepLast)")
        let protected = Set([latestName(), bestName()].compactMap { $0 })
        let files = checkpointFiles()
        var removed: [String] = []
        for (_, name) in files.dropLast(keepLast) where !protected.contains(name) {
            try remove(path(of: name))
            removed.append(name)
        }
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        for name in names where name.hasSuffix(".h5.tmp") {
            try remove(path(of: name))
        }
        if !removed.isEmpty { try fsyncPath(directory, directory: true) }
        return removed
    }

    // MARK: - Resuming

    /// The checkpoint to resume from, or nil for a fresh start. `auto`: `latest` if it verifies; otherwise (warning)
    /// the newest older checkpoint that does; nil when the directory holds no checkpoint; an error when all are
    /// damaged. An explicit path must verify. Every checksum is checked. Collective in parallel mode (rank 0 reads,
    /// warns, and broadcasts its choice).
    public func resolve(_ mode: ResumeMode) throws -> ResumeChoice? {
        var choice: ResumeChoice?
        try collective.agree(file: directory) {
            if collective.isRoot { choice = try resolveLocally(mode) }
        }
        let encoded = try collective.broadcast(choice.map { "\($0.step)\t\($0.path)\t" + $0.warnings.joined(separator: "\u{1}") } ?? "",
                                               root: 0)
        guard !encoded.isEmpty else { return nil }
        let parts = encoded.split(separator: "\t", maxSplits: 2, omittingEmptySubsequences: false).map(String.init)
        return ResumeChoice(path: parts[1], step: Int(parts[0]) ?? 0,
                            warnings: parts[2].split(separator: "\u{1}").map(String.init))
    }

    private func resolveLocally(_ mode: ResumeMode) throws -> ResumeChoice? {
        switch mode {
        case .none:
            return nil
        case .path(let explicit):
            let step = try Self.verifiedStep(explicit)
            return ResumeChoice(path: explicit, step: step, warnings: [])
        case .auto:
            var warnings: [String] = []
            var candidates = checkpointFiles().reversed().map { $0 }
            if let latest = latestName() {
                if let latestStep = Self.step(fromFileName: latest), FileManager.default.fileExists(atPath: path(of: latest)) {
                    do {
                        let step = try Self.verifiedStep(path(of: latest))
                        return ResumeChoice(path: path(of: latest), step: step, warnings: [])
                    } catch {
                        warnings.append("latest checkpoint '\(latest)' is damaged (\(error)); falling back to the previous complete checkpoint")
                    }
                    candidates = candidates.filter { $0.step < latestStep }
                } else {
                    warnings.append("'latest' names '\(latest)', which is missing; using the newest complete checkpoint")
                }
            } else if !candidates.isEmpty {
                warnings.append("no 'latest' pointer in '\(directory)'; using the newest complete checkpoint")
            }
            for (_, name) in candidates {
                do {
                    let step = try Self.verifiedStep(path(of: name))
                    warnings.forEach(warn)
                    warn("resuming from '\(name)' (step \(step))")
                    return ResumeChoice(path: path(of: name), step: step, warnings: warnings + ["resuming from '\(name)' (step \(step))"])
                } catch {
                    warnings.append("checkpoint '\(name)' is damaged (\(error))")
                }
            }
            if warnings.isEmpty { return nil }
            warnings.forEach(warn)
            throw CheckpointError.noUsableCheckpoint(directory: directory, detail: warnings.joined(separator: "; "))
        }
    }

    /// Opens (serially) and verifies a checkpoint; returns its step.
    static func verifiedStep(_ path: String) throws -> Int {
        let reader = try CheckpointReader(path: path)
        defer { try? reader.close() }
        try reader.verify()
        return reader.metadata.step
    }

    // MARK: - Files

    private func improves(_ metric: Double, higherIsBetter: Bool) -> Bool {
        guard let best = bestName(), FileManager.default.fileExists(atPath: path(of: best)),
              let reader = try? CheckpointReader(path: path(of: best)) else { return true }
        defer { try? reader.close() }
        guard let bestMetric = reader.metadata.evalMetric else { return true }
        return higherIsBetter ? metric > bestMetric : metric < bestMetric
    }

    private func createDirectory() throws {
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw CheckpointError.io(path: directory, operation: "create directory", detail: "\(error.localizedDescription)")
        }
    }

    private func readPointer(_ pointer: String) -> String? {
        guard let data = FileManager.default.contents(atPath: path(of: pointer)) else { return nil }
        let name = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        return name.isEmpty ? nil : name
    }

    /// Replaces pointer file `pointer` atomically: write `<pointer>.tmp`, fsync, rename, fsync the directory.
    private func writePointer(_ pointer: String, _ name: String) throws {
        let target = path(of: pointer), temporary = target + ".tmp"
        guard FileManager.default.createFile(atPath: temporary, contents: Data((name + "\n").utf8)) else {
            throw CheckpointError.io(path: temporary, operation: "write", detail: String(cString: strerror(errno)))
        }
        try fsyncPath(temporary)
        try rename(temporary, target)
        try fsyncPath(directory, directory: true)
    }

    private func rename(_ source: String, _ destination: String) throws {
        guard Foundation.rename(source, destination) == 0 else {
            throw CheckpointError.io(path: source, operation: "rename to '\(destination)'", detail: String(cString: strerror(errno)))
        }
    }

    private func remove(_ path: String) throws {
        guard unlink(path) == 0 || errno == ENOENT else {
            throw CheckpointError.io(path: path, operation: "remove", detail: String(cString: strerror(errno)))
        }
    }
}
