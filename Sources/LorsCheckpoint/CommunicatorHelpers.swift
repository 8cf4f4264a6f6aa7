import Foundation
import LorsDistributed
import LorsNative

extension Communicator {
    /// Runs `body` on every rank and makes the outcome collective: if any rank threw, every rank throws (its own
    /// error, or `failedOnAnotherRank` with the lowest failing rank's message).
    func agree<T>(file: String, _ body: () throws -> T) throws -> T {
        var result: Result<T, Error>
        do { result = .success(try body()) } catch { result = .failure(error) }
        guard size > 1 else { return try result.get() }
        var failed = false
        if case .failure = result { failed = true }
        let lowestFailing = try allReduceMin(failed ? Int64(rank) : Int64.max)
        if lowestFailing == Int64.max { return try result.get() }
        var message = ""
        if case .failure(let error) = result { message = "\(error)" }
        let rootMessage = try broadcast(message, root: Int(lowestFailing))
        if case .failure(let error) = result { throw error }
        throw CheckpointError.failedOnAnotherRank(file: file, detail: "rank \(lowestFailing): \(rootMessage)")
    }

    /// The communicator a checkpoint file is opened over (`CheckpointWriter`, `CheckpointReader`): this one when every
    /// rank opens files (`sharesFileAccess`), else an error naming `file` (in-process replicas go through
    /// `CheckpointDirectory`, where rank 0 alone opens the file).
    func checkFileAccess(file: String) throws {
        guard sharesFileAccess else {
            throw CheckpointError.inconsistentRanks(
                file: file, detail: "\(size) in-process replicas cannot open one HDF5 file together (no MPI communicator); "
                    + "rank 0 opens it alone over a LocalCommunicator (see CheckpointDirectory)")
        }
    }
}

/// FNV-1a 64 of a string (used to check that every rank described the same datasets).
func fnv1a64(_ text: String, continuing hash: UInt64 = 0xcbf2_9ce4_8422_2325) -> UInt64 {
    var hash = hash
    for byte in text.utf8 {
        hash ^= UInt64(byte)
        hash = hash &* 0x0000_0100_0000_01b3
    }
    return hash
}

/// fsync of a file or directory by path.
func fsyncPath(_ path: String, directory: Bool = false) throws {
    let fd = open(path, directory ? (O_RDONLY | O_DIRECTORY) : O_RDONLY)
    guard fd >= 0 else {
        throw CheckpointError.io(path: path, operation: "open for fsync", detail: String(cString: strerror(errno)))
    }
    defer { close(fd) }
    guard fsync(fd) == 0 else {
        throw CheckpointError.io(path: path, operation: "fsync", detail: String(cString: strerror(errno)))
    }
}

/// Maps a `NativeError` from opening a checkpoint to the checkpoint error it means.
func classifyOpenError(_ error: Error, file: String) -> Error {
    guard let native = error as? NativeError else { return error }
    let message = native.message.lowercased()
    if message.contains("truncated") || message.contains("eof") || message.contains("end of file") {
        return CheckpointError.truncated(file: file, detail: native.message)
    }
    if message.contains("signature") {
        let size = (try? FileManager.default.attributesOfItem(atPath: file)[.size] as? Int) ?? nil
        if size == 0 { return CheckpointError.truncated(file: file, detail: "the file is empty") }
        return CheckpointError.notACheckpoint(file: file, detail: "not an HDF5 file (\(native.message))")
    }
    return CheckpointError.native(file: file, error: native)
}
