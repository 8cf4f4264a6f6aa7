import CFileIO
import Foundation

/// Starts the disk write of a checkpoint's bytes while the writer is still copying later ones into the page cache,
/// so the fsync that commits the file waits only for the tail: a write then costs about max(copy, disk) instead of
/// copy + disk.
///
/// The writer reports each extent of tensor data it has written (`wrote(offset:bytes:)`). Only whole pages inside an
/// extent are written back early: a page that also holds HDF5 metadata is left for the fsync, because metadata is
/// updated after the data, and a page under write-back may make such an update wait for the disk. Adjacent extents
/// are merged up to `batchBytes`, and `sync_file_range(SYNC_FILE_RANGE_WRITE)` is issued on a background thread (it
/// can block while the disk queue is full). Only a hint: where the call is missing or fails, the fsync does it all.
public final class WriteBehind: @unchecked Sendable {
    /// Bytes merged before a write-back is started.
    static let batchBytes = 16 << 20
    /// The unit of write-back.
    static let pageBytes = 4096

    private let queue = DispatchQueue(label: "lors.checkpoint.write-behind", qos: .utility)
    private let start: @Sendable (Range<Int>) -> Void
    private let done: @Sendable () -> Void
    private var pending: Range<Int>?

    /// Opens `path` for the hints; nil when it cannot be opened (then there is nothing to do early).
    public convenience init?(path: String) {
        let descriptor = open(path, O_RDONLY)
        guard descriptor >= 0 else { return nil }
        self.init(start: { span in _ = lors_start_writeback(descriptor, Int64(span.lowerBound), Int64(span.count)) },
                  done: { _ = close(descriptor) })
    }

    /// `start` is called (on a background thread, in order) with each file span to write back; `done` after the last.
    init(start: @escaping @Sendable (Range<Int>) -> Void, done: @escaping @Sendable () -> Void = {}) {
        self.start = start
        self.done = done
    }

    /// This process has written `bytes` at file `offset` (into the page cache).
    public func wrote(offset: Int, bytes: Int) {
        let page = Self.pageBytes
        let lower = (offset + page - 1) / page * page, upper = (offset + bytes) / page * page
        guard upper > lower else { return }
        if let current = pending, current.upperBound == lower {
            pending = current.lowerBound..<upper
        } else {
            flush()
            pending = lower..<upper
        }
        if pending!.count >= Self.batchBytes { flush() }
    }

    /// Starts the write-back of what is pending.
    public func flush() {
        guard let span = pending else { return }
        pending = nil
        let start = start
        queue.async { start(span) }
    }

    /// Starts the last write-back; `done` runs after it on the background thread. Does not wait: a span may still
    /// wait for room in the disk queue while the writer goes on with the metadata (the fsync waits for all of it).
    public func finish() {
        flush()
        let done = done
        queue.async { done() }
    }
}
