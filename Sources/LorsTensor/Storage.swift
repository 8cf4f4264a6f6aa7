/// A reference-counted block of device memory owned by one backend.
///
/// Several tensors may view one storage (reshape, leading-axis slices). The memory returns
/// to the backend's cache when the last view goes away.
public final class Storage: @unchecked Sendable {
    /// Number of floats.
    public let count: Int
    /// Device pointer to the first float. Internal: code above the backend seam reaches the memory only
    /// through the backend (`Tensor.toArray()`, `copyToHost`, `withHostBuffer`, ...; see docs/backend.md).
    let pointer: UnsafeMutablePointer<Float>
    /// The backend that owns the memory.
    public let backend: any Backend

    /// Allocates `count` floats on `backend` (contents undefined).
    public init(count: Int, backend: any Backend = Backends.current) {
        self.count = count
        self.backend = backend
        self.pointer = backend.allocate(Swift.max(count, 1))
    }

    deinit { backend.release(pointer, count: Swift.max(count, 1)) }
}
