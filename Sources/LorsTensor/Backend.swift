/// The backend seam: every kernel the tensor ops need, grouped by family.
///
/// Models and the training loop only call `Tensor` ops; ops only call these kernels on raw
/// device pointers. A CUDA backend plugs in by conforming to the same protocols and being
/// installed with `Backends.setCurrent(_:)`; nothing above this layer changes.
///
/// Device pointers never leave LorsTensor (`Tensor.pointer` is internal). Code above the seam that
/// needs values on the host uses the host calls of `Tensor` (HostAccess.swift): `toArray()`,
/// `copyToHost` / `copyFromHost` (whole tensor or a range), `withHostBuffer` / `withMutableHostBuffer`
/// (scoped host views for MPI buffers and file I/O), `hostStaging(elements:)` (for non-blocking
/// collectives) and `Tensor.allFinite`. On a host-addressable backend (`isHostAddressable`, the CPU)
/// the views are the tensor's own memory (no copy); on others they are host copies staged with
/// `download` / `upload`. `CheckingBackend` makes every other access crash. Index arrays
/// (`UnsafePointer<Int32>` arguments) are host memory on every backend.
public protocol BackendCore: AnyObject {
    /// Short name for logs ("cpu", "cuda").
    var name: String { get }
    /// Whether device pointers of this backend are ordinary host memory that the host may read and write
    /// directly (CPU). The host-access calls of `Tensor` then hand out the memory itself instead of a copy.
    var isHostAddressable: Bool { get }
    /// Returns uninitialised device memory for `count` floats (may come from a cache).
    func allocate(_ count: Int) -> UnsafeMutablePointer<Float>
    /// Returns memory obtained from `allocate` (the backend may cache it for reuse).
    func release(_ pointer: UnsafeMutablePointer<Float>, count: Int)
    /// Sets `count` floats to `value`.
    func fill(_ pointer: UnsafeMutablePointer<Float>, count: Int, value: Float)
    /// Copies `count` floats device → device.
    func copy(from source: UnsafePointer<Float>, to destination: UnsafeMutablePointer<Float>, count: Int)
    /// Copies host → device (`host` is ordinary host memory).
    func upload(_ host: UnsafePointer<Float>, to destination: UnsafeMutablePointer<Float>, count: Int)
    /// Copies device → host (`host` is ordinary host memory).
    func download(_ source: UnsafePointer<Float>, to host: UnsafeMutablePointer<Float>, count: Int)
    /// Bytes currently held by the allocation cache and in use, for memory reports.
    var memoryStatistics: MemoryStatistics { get }
    /// Drops cached (unused) buffers.
    func emptyCache()
}

/// Allocation counters of a backend.
public struct MemoryStatistics: Sendable {
    /// Bytes handed out and not yet released.
    public var inUseBytes: Int
    /// Bytes cached for reuse.
    public var cachedBytes: Int
    /// High-water mark of `inUseBytes`.
    public var peakInUseBytes: Int
    /// Number of allocations that could not be served from the cache.
    public var freshAllocations: Int
}

/// All kernel families a backend provides. New families are added here.
public typealias Backend = BackendCore & GemmKernels & ElementwiseKernels & ReductionKernels & LayoutKernels
    & SoftmaxKernels & AttentionKernels & LinearKernels & NormKernels & LossKernels & ConvKernels & SamplingKernels & RandomKernels & OptimizerKernels

/// The process-wide current backend.
public enum Backends {
    nonisolated(unsafe) private static var _current: any Backend = CPUBackend.shared
    /// The backend new tensors are allocated on and ops run on.
    public static var current: any Backend { _current }
    /// Installs a backend (call before creating tensors).
    public static func setCurrent(_ backend: any Backend) { _current = backend }
}
