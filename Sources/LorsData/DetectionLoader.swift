import Foundation
import LorsTensor

/// Delivers this rank's slices of a list of global detection batches, in order, decoding and transforming the samples
/// of upcoming batches on `numWorkers` threads, at most `prefetch` batches ahead of the one being consumed.
///
/// Every sample is a function of (seed, epoch, image index) and of its global batch's padded size only, so the
/// batches are the same for any number of workers (0: everything on the caller's thread in `next()`). An unusable
/// image throws from `next()` for the batch that holds it (the error of the first such sample in the slice), unless
/// the assembler has `skipBadImages`; `skippedImages` and `warnings` then count and describe the replacements so far.
public final class DetectionLoader: @unchecked Sendable {
    public let assembler: DetectionBatchAssembler
    public let epoch: Int
    public let numWorkers: Int
    public let prefetch: Int

    private final class Pending {
        let indices: [Int]
        let height: Int, width: Int
        let buffer: UnsafeMutablePointer<Float>
        var prepared: [(sample: DetectionSample, warning: String?)?]
        var errors: [Error?]
        var remaining: Int
        init(indices: [Int], height: Int, width: Int) {
            self.indices = indices
            self.height = height
            self.width = width
            buffer = .allocate(capacity: max(1, indices.count * 3 * height * width))
            prepared = Array(repeating: nil, count: indices.count)
            errors = Array(repeating: nil, count: indices.count)
            remaining = indices.count
        }
        deinit { buffer.deallocate() }
    }

    private let globalBatches: [[Int]]
    private let rank: Int, worldSize: Int
    private let condition = NSCondition()
    private var pending: [Int: Pending] = [:]
    /// Next batch to hand out to `next()`, next (batch, slot) task for the workers.
    private var consumed = 0
    private var taskBatch = 0, taskSlot = 0
    private var stopped = false
    private var threads: [Thread] = []
    private var skipped = 0
    private var warningList: [String] = []

    public init(assembler: DetectionBatchAssembler, globalBatches: [[Int]], epoch: Int, rank: Int = 0, worldSize: Int = 1,
                numWorkers: Int, prefetch: Int = 2) {
        precondition(numWorkers >= 0 && prefetch >= 1, "numWorkers >= 0 and prefetch >= 1")
        self.assembler = assembler
        self.globalBatches = globalBatches
        self.epoch = epoch
        self.rank = rank
        self.worldSize = worldSize
        self.numWorkers = numWorkers
        self.prefetch = prefetch
        for _ in 0..<numWorkers {
            let thread = Thread { [unowned self] in self.work() }
            thread.stackSize = 4 << 20
            threads.append(thread)
        }
        threads.forEach { $0.start() }
    }

    deinit { stop() }

    /// Replacements of unusable images so far (`skipBadImages`).
    public var skippedImages: Int { condition.lock(); defer { condition.unlock() }; return skipped }
    public var warnings: [String] { condition.lock(); defer { condition.unlock() }; return warningList }

    /// Stops the workers (after their current sample); `next()` then returns nil.
    public func stop() {
        condition.lock()
        stopped = true
        condition.broadcast()
        condition.unlock()
    }

    /// The batch's pending record, made on first use (caller holds the lock).
    private func record(_ k: Int) -> Pending {
        if let p = pending[k] { return p }
        let global = globalBatches[k]
        let (h, w) = assembler.paddedSize(global, epoch: epoch)
        let mine = Array(global[DistributedSampler.slice(count: global.count, rank: rank, worldSize: worldSize)])
        let p = Pending(indices: mine, height: h, width: w)
        pending[k] = p
        return p
    }

    private func work() {
        condition.lock()
        while true {
            // Skip past empty slices.
            while !stopped && taskBatch < globalBatches.count && taskBatch < consumed + prefetch && taskSlot >= record(taskBatch).indices.count {
                taskBatch += 1
                taskSlot = 0
            }
            if stopped || taskBatch >= globalBatches.count { condition.unlock(); return }
            if taskBatch >= consumed + prefetch { condition.wait(); continue }
            let p = record(taskBatch), slot = taskSlot
            taskSlot += 1
            condition.unlock()
            let image = p.indices[slot]
            var result: (sample: DetectionSample, warning: String?)? = nil
            var failure: Error? = nil
            do {
                let r = try assembler.prepare(image, epoch: epoch)
                let plane = 3 * p.height * p.width
                assembler.write(r.sample, into: p.buffer + slot * plane, height: p.height, width: p.width)
                result = r
            } catch {
                failure = error
            }
            condition.lock()
            p.prepared[slot] = result
            p.errors[slot] = failure
            p.remaining -= 1
            if p.remaining == 0 { condition.broadcast() }
        }
    }

    /// The next batch slice, or nil after the last one (or after `stop()`).
    public func next() throws -> DetectionBatch? {
        condition.lock()
        guard !stopped, consumed < globalBatches.count else { condition.unlock(); return nil }
        let k = consumed
        let p: Pending
        if numWorkers == 0 {
            p = record(k)
            condition.unlock()
            for (slot, image) in p.indices.enumerated() {
                do {
                    let r = try assembler.prepare(image, epoch: epoch)
                    assembler.write(r.sample, into: p.buffer + slot * 3 * p.height * p.width, height: p.height, width: p.width)
                    p.prepared[slot] = r
                } catch {
                    p.errors[slot] = error
                    break
                }
            }
            condition.lock()
        } else {
            p = record(k)
            while p.remaining > 0 && !stopped { condition.wait() }
            if p.remaining > 0 { condition.unlock(); return nil }
        }
        pending[k] = nil
        consumed += 1
        condition.broadcast()
        if let error = p.errors.compactMap({ $0 }).first {
            stopped = true
            condition.broadcast()
            condition.unlock()
            throw error
        }
        let prepared = p.prepared.map { $0! }
        let batch = DetectionBatchAssembler.batch(indices: p.indices, prepared: prepared, buffer: p.buffer, height: p.height, width: p.width)
        skipped += batch.warnings.count
        warningList += batch.warnings
        condition.unlock()
        return batch
    }
}
