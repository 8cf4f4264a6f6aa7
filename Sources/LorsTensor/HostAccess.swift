/// Host access to tensor memory: the only way code above the backend seam reads or writes tensor values.
///
/// `Tensor.pointer` is internal to LorsTensor because device memory need not be host memory. Code that needs
/// values on the host (checkpoint files, MPI buffers, data assembly, tests) uses these calls:
///
/// - `toArray()`, `toArray(elements:)`, `copyToHost(_:from:)`: device → host copies;
/// - `Tensor(_:shape:)`, `copyFromHost(_:at:)`, `setValues(_:at:)`: host → device copies;
/// - `withHostBuffer` / `withMutableHostBuffer` (and the many-tensor forms `Tensor.withHostBuffers` /
///   `Tensor.withMutableHostBuffers`): a host view valid inside the closure. On a host-addressable backend
///   (`BackendCore.isHostAddressable`, the CPU) the view *is* the tensor's memory (zero copy); otherwise it is a
///   host copy: downloaded before the closure, and for the mutable forms uploaded after it returns (not when
///   it throws);
/// - `hostStaging(elements:)`: the same for consumers whose use outlives a closure (non-blocking collectives):
///   `pull()` / `push()` copy device → host / host → device and do nothing on a host-addressable backend;
/// - `Tensor.allFinite(_:)`: the finiteness check of a training step, one pass per tensor on the device.
public extension Tensor {
    // MARK: copies

    /// Copies elements `elements` (flat, row-major) to a host array.
    func toArray(elements: Range<Int>) -> [Float] {
        checkRange(elements)
        var out = [Float](repeating: 0, count: elements.count)
        if !elements.isEmpty {
            out.withUnsafeMutableBufferPointer { backend.download(pointer + elements.lowerBound, to: $0.baseAddress!, count: elements.count) }
        }
        return out
    }

    /// Copies `host.count` elements starting at flat element `start` into `host`.
    func copyToHost(_ host: UnsafeMutableBufferPointer<Float>, from start: Int = 0) {
        checkRange(start..<(start + host.count))
        if let base = host.baseAddress, host.count > 0 { backend.download(pointer + start, to: base, count: host.count) }
    }

    /// Overwrites `host.count` elements starting at flat element `start` with `host`; not recorded.
    func copyFromHost(_ host: UnsafeBufferPointer<Float>, at start: Int = 0) {
        checkRange(start..<(start + host.count))
        if let base = host.baseAddress, host.count > 0 { backend.upload(base, to: pointer + start, count: host.count) }
    }

    /// Overwrites `values.count` elements starting at flat element `start` with `values`; not recorded.
    func setValues(_ values: [Float], at start: Int = 0) {
        values.withUnsafeBufferPointer { copyFromHost($0, at: start) }
    }

    // MARK: scoped host views

    /// Runs `body` with elements `elements` (default: all) as host memory: the tensor's own memory on a
    /// host-addressable backend, otherwise a downloaded copy. `body` must not write through the buffer nor keep it.
    func withHostBuffer<R>(elements: Range<Int>? = nil, _ body: (UnsafeBufferPointer<Float>) throws -> R) rethrows -> R {
        let range = elements ?? 0..<count
        checkRange(range)
        if backend.isHostAddressable {
            return try body(UnsafeBufferPointer(start: pointer + range.lowerBound, count: range.count))
        }
        let staged = UnsafeMutableBufferPointer<Float>.allocate(capacity: range.count)
        defer { staged.deallocate() }
        if range.count > 0 { backend.download(pointer + range.lowerBound, to: staged.baseAddress!, count: range.count) }
        return try body(UnsafeBufferPointer(staged))
    }

    /// Runs `body` with elements `elements` (default: all) as writable host memory: the tensor's own memory on a
    /// host-addressable backend, otherwise a downloaded copy that is uploaded back when `body` returns (not when it
    /// throws). Not recorded on the tape. `body` must not keep the buffer.
    func withMutableHostBuffer<R>(elements: Range<Int>? = nil, _ body: (UnsafeMutableBufferPointer<Float>) throws -> R) rethrows -> R {
        let range = elements ?? 0..<count
        checkRange(range)
        if backend.isHostAddressable {
            return try body(UnsafeMutableBufferPointer(start: pointer + range.lowerBound, count: range.count))
        }
        let staged = UnsafeMutableBufferPointer<Float>.allocate(capacity: range.count)
        defer { staged.deallocate() }
        if range.count > 0 { backend.download(pointer + range.lowerBound, to: staged.baseAddress!, count: range.count) }
        let result = try body(staged)
        if range.count > 0 { backend.upload(staged.baseAddress!, to: pointer + range.lowerBound, count: range.count) }
        return result
    }

    /// `withHostBuffer` for several tensors at once (each whole), e.g. every dataset of a checkpoint file.
    static func withHostBuffers<R>(_ tensors: [Tensor], _ body: ([UnsafeBufferPointer<Float>]) throws -> R) rethrows -> R {
        let stages = tensors.map { HostStaging(tensor: $0, elements: 0..<$0.count) }
        for stage in stages { stage.pull() }
        return try withExtendedLifetime(stages) { try body(stages.map { UnsafeBufferPointer($0.buffer) }) }
    }

    /// `withMutableHostBuffer` for several tensors at once (each whole): all copies are uploaded after `body` returns.
    static func withMutableHostBuffers<R>(_ tensors: [Tensor], _ body: ([UnsafeMutableBufferPointer<Float>]) throws -> R) rethrows -> R {
        let stages = tensors.map { HostStaging(tensor: $0, elements: 0..<$0.count) }
        for stage in stages { stage.pull() }
        let result = try withExtendedLifetime(stages) { try body(stages.map(\.buffer)) }
        for stage in stages { stage.push() }
        return result
    }

    /// A host view of elements `elements` (default: all) that lives as long as the returned object, for uses that
    /// outlive a closure (a non-blocking all-reduce started during backward and finished later).
    func hostStaging(elements: Range<Int>? = nil) -> HostStaging {
        let range = elements ?? 0..<count
        checkRange(range)
        return HostStaging(tensor: self, elements: range)
    }

    // MARK: finiteness

    /// Whether every element of every tensor is finite (no NaN, no ±Inf): one pass per tensor on its backend
    /// (`ReductionKernels.allFinite`), stopping at the first tensor that is not.
    static func allFinite(_ tensors: [Tensor]) -> Bool {
        for t in tensors where t.count > 0 {
            if !t.backend.allFinite(x: t.pointer, count: t.count) { return false }
        }
        return true
    }

    /// Σ x² over the elements, accumulated in Double in a fixed order (`ReductionKernels.sumOfSquares`).
    func sumOfSquares() -> Double {
        count == 0 ? 0 : backend.sumOfSquares(x: pointer, count: count)
    }

    private func checkRange(_ range: Range<Int>) {
        precondition(range.lowerBound >= 0 && range.upperBound <= count,
                     "elements \(range) out of range for tensor\(name.isEmpty ? "" : " '\(name)'") of \(count) elements")
    }
}

/// Host memory for a range of a tensor whose use outlives a closure (see `Tensor.hostStaging(elements:)`).
///
/// On a host-addressable backend `buffer` is the tensor's own memory and `pull()` / `push()` do nothing; otherwise
/// `buffer` is a host copy: `pull()` downloads the range into it, `push()` uploads it back. The object keeps the
/// tensor alive; `buffer` is valid while the object lives.
public final class HostStaging: @unchecked Sendable {
    /// The tensor viewed.
    public let tensor: Tensor
    /// Flat element range of `tensor` that `buffer` holds.
    public let elements: Range<Int>
    /// Host memory of the range (the tensor's own memory when `isCopy` is false).
    public let buffer: UnsafeMutableBufferPointer<Float>
    /// Whether `buffer` is a separate host copy (the backend is not host-addressable).
    public let isCopy: Bool

    init(tensor: Tensor, elements: Range<Int>) {
        self.tensor = tensor
        self.elements = elements
        if tensor.backend.isHostAddressable {
            buffer = UnsafeMutableBufferPointer(start: tensor.pointer + elements.lowerBound, count: elements.count)
            isCopy = false
        } else {
            buffer = .allocate(capacity: elements.count)
            isCopy = true
        }
    }

    deinit { if isCopy { buffer.deallocate() } }

    /// Device → host (no-op when `buffer` is the tensor's memory).
    public func pull() {
        guard isCopy, !elements.isEmpty else { return }
        tensor.backend.download(tensor.pointer + elements.lowerBound, to: buffer.baseAddress!, count: elements.count)
    }

    /// Host → device (no-op when `buffer` is the tensor's memory).
    public func push() {
        guard isCopy, !elements.isEmpty else { return }
        tensor.backend.upload(buffer.baseAddress!, to: tensor.pointer + elements.lowerBound, count: elements.count)
    }
}
