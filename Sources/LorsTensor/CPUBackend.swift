import Foundation
import CBLAS

/// The CPU backend: OpenBLAS for matrix products, multi-threaded Swift loops for the rest.
///
/// Memory comes from a caching allocator keyed by size class, so a training step that
/// repeats the same shapes reuses the same pages instead of faulting in fresh ones
/// (first touch of fresh pages runs at ~1.4 GB/s on these machines, slower than the math).
public final class CPUBackend: BackendCore, @unchecked Sendable {
    /// The single CPU backend instance.
    public static let shared = CPUBackend()

    public let name = "cpu"
    /// CPU memory is host memory: host views of tensors are zero-copy.
    public var isHostAddressable: Bool { true }
    private let lock = NSLock()
    private var cache: [Int: [UnsafeMutablePointer<Float>]] = [:]
    private var stats = MemoryStatistics(inUseBytes: 0, cachedBytes: 0, peakInUseBytes: 0, freshAllocations: 0)

    private init() {}

    /// Rounds a request up to its size class: multiples of 16 floats below 4096, then
    /// quarter steps between powers of two (at most 25% slack).
    static func sizeClass(_ count: Int) -> Int {
        if count <= 4096 { return max(16, (count + 15) & ~15) }
        var p = 4096
        while p * 2 < count { p *= 2 }
        let step = p / 4
        return ((count + step - 1) / step) * step
    }

    public func allocate(_ count: Int) -> UnsafeMutablePointer<Float> {
        let size = CPUBackend.sizeClass(count)
        lock.lock()
        defer { lock.unlock() }
        stats.inUseBytes += size * 4
        stats.peakInUseBytes = max(stats.peakInUseBytes, stats.inUseBytes)
        if var list = cache[size], let p = list.popLast() {
            cache[size] = list
            stats.cachedBytes -= size * 4
            return p
        }
        stats.freshAllocations += 1
        let raw = UnsafeMutableRawPointer.allocate(byteCount: size * 4, alignment: 64)
        return raw.bindMemory(to: Float.self, capacity: size)
    }

    public func release(_ pointer: UnsafeMutablePointer<Float>, count: Int) {
        let size = CPUBackend.sizeClass(count)
        lock.lock()
        defer { lock.unlock() }
        stats.inUseBytes -= size * 4
        stats.cachedBytes += size * 4
        cache[size, default: []].append(pointer)
    }

    public var memoryStatistics: MemoryStatistics {
        lock.lock(); defer { lock.unlock() }
        return stats
    }

    public func emptyCache() {
        lock.lock(); defer { lock.unlock() }
        for (_, list) in cache { for p in list { UnsafeMutableRawPointer(p).deallocate() } }
        cache.removeAll()
        stats.cachedBytes = 0
    }

    public func fill(_ pointer: UnsafeMutablePointer<Float>, count: Int, value: Float) {
        parallelFor(count, grain: 1 << 16) { s, e in
            if value == 0 {
                memset(pointer + s, 0, (e - s) * 4)
            } else {
                (pointer + s).update(repeating: value, count: e - s)
            }
        }
    }

    public func copy(from source: UnsafePointer<Float>, to destination: UnsafeMutablePointer<Float>, count: Int) {
        parallelFor(count, grain: 1 << 16) { s, e in
            memcpy(destination + s, source + s, (e - s) * 4)
        }
    }

    public func upload(_ host: UnsafePointer<Float>, to destination: UnsafeMutablePointer<Float>, count: Int) {
        copy(from: host, to: destination, count: count)
    }

    public func download(_ source: UnsafePointer<Float>, to host: UnsafeMutablePointer<Float>, count: Int) {
        copy(from: source, to: host, count: count)
    }
}
