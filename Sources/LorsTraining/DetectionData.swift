import Foundation
import LorsData
import LorsDetection
import LorsDistributed

public extension COCODetectionIndex {
    /// Reads a COCO instances file once for the whole process group (collective: every rank calls it with the same
    /// arguments): rank 0 parses the JSON and broadcasts the index's `serialized()` bytes; the other ranks build the
    /// index from them and never open the file, so N ranks of a node do not each pay a parse's peak memory.
    ///
    /// When rank 0 cannot read the file (missing, malformed JSON with its line:column, a rule of the index broken),
    /// rank 0 broadcasts the message instead and every rank throws the same `COCOError`, which names the file; no rank
    /// waits for bytes that never come.
    static func load(path: String, options: Options, communicator: any Communicator) throws -> COCODetectionIndex {
        // One broadcast: the index's serialized bytes (which start with their magic, an ASCII letter), or a 0 byte
        // followed by rank 0's error message.
        var index: COCODetectionIndex?
        var message: [UInt8] = []
        if communicator.rank == 0 {
            do {
                let parsed = try COCODetectionIndex(path: path, options: options)
                message = parsed.serialized()
                index = parsed
            } catch {
                message = [0] + Array("\(error)".utf8)
            }
        }
        let received = try communicator.broadcast(bytes: message, root: 0)
        message = []
        guard let first = received.first else {
            throw COCOError("\(path): rank 0 sent no COCO index (an empty broadcast)")
        }
        guard first != 0 else {
            throw COCOError(String(decoding: received.dropFirst(), as: UTF8.self))
        }
        if let index { return index }
        do {
            return try COCODetectionIndex(serialized: received)
        } catch {
            throw COCOError("\(path): the index rank 0 sent cannot be read on rank \(communicator.rank): \(error)")
        }
    }
}
