#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

/// A file mapped read-only into memory, read front to back: a scanner walks `bytes`, and `scanned(upTo:)` gives back
/// the pages behind it, so a large JSON file is read without ever being resident as a whole (the pages stay in the
/// page cache; only this process's share of them is dropped).
final class MappedFile {
    let path: String
    let bytes: UnsafeBufferPointer<UInt8>
    private let base: UnsafeMutableRawPointer?
    private var released = 0
    /// Pages are given back in steps of this many bytes.
    private static let releaseStep = 16 << 20

    /// Maps `path`; errors name it (no such file, a directory, cannot be read).
    init(path: String) throws {
        self.path = path
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else { throw COCOError("\(path): no such file") }
        guard !isDirectory.boolValue else { throw COCOError("\(path): is a directory, not a JSON file") }
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { throw COCOError("\(path): cannot be read (\(String(cString: strerror(errno))))") }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw COCOError("\(path): cannot be read (\(String(cString: strerror(errno))))") }
        let size = Int(info.st_size)
        if size == 0 {
            base = nil
            bytes = UnsafeBufferPointer(start: nil, count: 0)
            return
        }
        guard let mapped = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0), mapped != MAP_FAILED else {
            throw COCOError("\(path): cannot be read (\(String(cString: strerror(errno))))")
        }
        _ = madvise(mapped, size, MADV_SEQUENTIAL)
        base = mapped
        bytes = UnsafeBufferPointer(start: mapped.assumingMemoryBound(to: UInt8.self), count: size)
    }

    /// Gives back the whole pages before `offset` once at least `releaseStep` bytes have been read past the last
    /// release. Reading them again (an error message's line:column) maps them in again.
    func scanned(upTo offset: Int) {
        guard let base, offset - released >= MappedFile.releaseStep else { return }
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let end = offset / page * page
        guard end > released else { return }
        _ = madvise(base, end, MADV_DONTNEED)
        released = end
    }

    deinit {
        if let base { munmap(base, bytes.count) }
    }
}
