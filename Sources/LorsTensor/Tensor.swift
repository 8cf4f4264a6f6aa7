/// A float32 tensor: a row-major contiguous view `[shape]` into a `Storage` at `offset`.
///
/// Views are free where the layout allows (reshape, ranges of the leading axis); every other
/// layout change copies. A tensor created by an op while gradients are recorded keeps its
/// place on the tape; `backward()` fills `.grad` of the leaves that require gradients.
///
/// The memory belongs to the backend and need not be host memory: outside LorsTensor, values are read and written
/// only through ops and the host calls (`toArray`, `copyToHost` / `copyFromHost`, `withHostBuffer` /
/// `withMutableHostBuffer`, `hostStaging`, `Tensor.allFinite`; HostAccess.swift, docs/backend.md).
public final class Tensor: @unchecked Sendable, CustomStringConvertible {
    /// Dimensions, outermost first.
    public let shape: [Int]
    /// Number of elements (product of `shape`).
    public let count: Int
    /// Backing memory (possibly shared with other views).
    public let storage: Storage
    /// Offset of element 0 in `storage`, in floats.
    public let offset: Int
    /// Whether gradients flow to / through this tensor.
    public var requiresGrad: Bool
    /// Accumulated gradient of a leaf tensor (parameters); `nil` until the first backward.
    public var grad: Tensor?
    /// Dotted name for parameters (`blocks.3.attn.qkv.weight`), used in errors and checkpoints.
    public var name: String
    /// Called once per backward pass when this leaf's gradient is final (all its uses done).
    public var gradientFinalHook: ((Tensor) -> Void)?
    /// True when this tensor was produced by a recorded op (not a leaf).
    public internal(set) var hasGradFn: Bool = false
    /// Gradient flowing into a non-leaf during backward.
    var pendingGrad: Tensor?
    /// Whether `pendingGrad` is memory the tape may accumulate into in place.
    var pendingGradOwned = false

    /// Wraps existing storage (no copy).
    public init(storage: Storage, shape: [Int], offset: Int = 0, requiresGrad: Bool = false, name: String = "") {
        let n = shape.reduce(1, *)
        precondition(shape.allSatisfy { $0 >= 0 }, "negative dimension in shape \(shape)")
        precondition(offset + n <= storage.count || n == 0, "view \(shape) at offset \(offset) exceeds storage of \(storage.count)")
        self.shape = shape
        self.count = n
        self.storage = storage
        self.offset = offset
        self.requiresGrad = requiresGrad
        self.name = name
    }

    /// Uninitialised tensor of `shape` on the current backend.
    public convenience init(uninitialized shape: [Int]) {
        self.init(storage: Storage(count: shape.reduce(1, *)), shape: shape)
    }

    /// Tensor filled with `value`.
    public convenience init(repeating value: Float, shape: [Int], requiresGrad: Bool = false) {
        self.init(uninitialized: shape)
        storage.backend.fill(pointer, count: count, value: value)
        self.requiresGrad = requiresGrad
    }

    /// Tensor holding `values` (row-major) with `shape`.
    public convenience init(_ values: [Float], shape: [Int], requiresGrad: Bool = false) {
        precondition(values.count == shape.reduce(1, *), "\(values.count) values do not fill shape \(shape)")
        self.init(uninitialized: shape)
        values.withUnsafeBufferPointer { storage.backend.upload($0.baseAddress!, to: pointer, count: count) }
        self.requiresGrad = requiresGrad
    }

    /// A 0-d tensor holding `value`.
    public convenience init(scalar value: Float) { self.init([value], shape: []) }

    /// Zeros of `shape`.
    public static func zeros(_ shape: [Int], requiresGrad: Bool = false) -> Tensor {
        Tensor(repeating: 0, shape: shape, requiresGrad: requiresGrad)
    }

    /// Ones of `shape`.
    public static func ones(_ shape: [Int], requiresGrad: Bool = false) -> Tensor {
        Tensor(repeating: 1, shape: shape, requiresGrad: requiresGrad)
    }

    /// Device pointer to element 0, for the ops in this module to pass to the backend's kernels. Internal: it may
    /// not be host memory (`CheckingBackend`, a GPU), so code above the seam uses the host calls (HostAccess.swift).
    @inline(__always) var pointer: UnsafeMutablePointer<Float> { storage.pointer + offset }
    /// The backend holding this tensor.
    @inline(__always) public var backend: any Backend { storage.backend }
    /// Number of dimensions.
    @inline(__always) public var rank: Int { shape.count }

    /// Size of dimension `axis` (negative counts from the end).
    public func dim(_ axis: Int) -> Int { shape[normalizeAxis(axis)] }

    /// Maps a possibly negative axis to `0..<rank`.
    public func normalizeAxis(_ axis: Int) -> Int {
        let a = axis < 0 ? axis + rank : axis
        precondition(a >= 0 && a < Swift.max(rank, 1), "axis \(axis) out of range for shape \(shape)")
        return a
    }

    /// Row-major strides of `shape`.
    public static func contiguousStrides(_ shape: [Int]) -> [Int] {
        var strides = [Int](repeating: 1, count: shape.count)
        var s = 1
        for i in stride(from: shape.count - 1, through: 0, by: -1) { strides[i] = s; s *= shape[i] }
        return strides
    }

    /// Copies the values to a host array.
    public func toArray() -> [Float] {
        var out = [Float](repeating: 0, count: count)
        if count > 0 { out.withUnsafeMutableBufferPointer { backend.download(pointer, to: $0.baseAddress!, count: count) } }
        return out
    }

    /// The single value of a one-element tensor.
    public func item() -> Float {
        precondition(count == 1, "item() on tensor of shape \(shape)")
        var v: Float = 0
        backend.download(pointer, to: &v, count: 1)
        return v
    }

    /// A detached copy with fresh storage (no gradient history).
    public func clone() -> Tensor {
        let t = Tensor(uninitialized: shape)
        backend.copy(from: pointer, to: t.pointer, count: count)
        return t
    }

    /// A view of the same memory without gradient history.
    public func detached() -> Tensor { Tensor(storage: storage, shape: shape, offset: offset) }

    /// Overwrites this tensor's values with `other`'s (same element count); not recorded.
    public func assign(_ other: Tensor) {
        precondition(other.count == count, "assign: \(other.shape) into \(shape)")
        backend.copy(from: other.pointer, to: pointer, count: count)
    }

    /// Sets every element to `value`; not recorded.
    public func fill(_ value: Float) { backend.fill(pointer, count: count, value: value) }

    /// Zeros (or drops) the accumulated gradient.
    public func zeroGrad() { grad?.fill(0) }

    public var description: String {
        let values = toArray()
        let shown = values.prefix(8).map { String(format: "%.4g", $0) }.joined(separator: ", ")
        return "Tensor\(shape)\(name.isEmpty ? "" : " '\(name)'")[\(shown)\(values.count > 8 ? ", ..." : "")]"
    }
}

import Foundation
