import LorsTensor

/// Start-up synchronisation: make every rank hold rank 0's parameters and buffers, then prove it.
public enum ReplicaSynchronization {
    /// FNV-1a (64-bit) over the 32-bit words of a tensor's values (bit patterns, so -0 ≠ +0 and NaNs compare by bits).
    public static func checksum(_ tensor: Tensor) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        tensor.withHostBuffer { values in
            for v in values { hash = (hash ^ UInt64(v.bitPattern)) &* 0x0000_0100_0000_01B3 }
        }
        return hash
    }

    /// FNV-1a (64-bit) over bytes.
    static func fnv(_ bytes: [UInt8]) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in bytes { hash = (hash ^ UInt64(b)) &* 0x0000_0100_0000_01B3 }
        return hash
    }

    /// Broadcasts `tensors` (parameters and buffers, each unique tensor once) from `root`, then
    /// checks every rank agrees (`verifyIdentical`). Collective.
    ///
    /// - Throws: `parameterListMismatch` when ranks registered different names/shapes (checked
    ///   before any tensor is sent), `replicaMismatch` naming the first differing tensor.
    public static func broadcastInitialState(_ tensors: [(String, Tensor)], communicator: Communicator, root: Int = 0) throws {
        try communicator.checkRank(root)
        let unique = deduplicated(tensors)
        try checkSameLayout(unique, communicator: communicator)
        for (_, t) in unique where t.count > 0 {
            try t.withMutableHostBuffer { try communicator.broadcast($0, root: root) }
        }
        try verifyIdentical(unique, communicator: communicator)
    }

    /// Compares per-tensor checksums of every rank with rank 0's; every rank throws the same error,
    /// naming the first tensor (in list order) and the lowest rank that differ. Collective.
    public static func verifyIdentical(_ tensors: [(String, Tensor)], communicator: Communicator) throws {
        let unique = deduplicated(tensors)
        var bytes: [UInt8] = []
        for (_, t) in unique { withUnsafeBytes(of: checksum(t).littleEndian) { bytes += $0 } }
        let all = try communicator.allGather(bytes: bytes)
        for (index, (name, _)) in unique.enumerated() {
            let reference = word(all[0], index)
            for r in 1..<all.count where word(all[r], index) != reference {
                throw DistributedError.replicaMismatch(
                    parameter: name, rank: r,
                    detail: "checksum \(hex(word(all[r], index))) vs rank 0's \(hex(reference))")
            }
        }
    }

    private static func checkSameLayout(_ tensors: [(String, Tensor)], communicator: Communicator) throws {
        let layout = tensors.map { "\($0.0)\($0.1.shape)" }
        let hash = Int64(bitPattern: fnv(Array(layout.joined(separator: ";").utf8)))
        let all = try communicator.allGather(hash)
        if let r = all.firstIndex(where: { $0 != all[0] }) {
            throw DistributedError.parameterListMismatch(
                rank: r, detail: "\(tensors.count) tensors here; names/shapes hash \(hex(UInt64(bitPattern: all[r]))) vs rank 0's "
                    + "\(hex(UInt64(bitPattern: all[0])))")
        }
    }

    private static func deduplicated(_ tensors: [(String, Tensor)]) -> [(String, Tensor)] {
        var seen = Set<ObjectIdentifier>()
        return tensors.filter { seen.insert(ObjectIdentifier($0.1)).inserted }
    }

    private static func word(_ bytes: [UInt8], _ index: Int) -> UInt64 {
        guard bytes.count >= (index + 1) * 8 else { return 0 }
        var v: UInt64 = 0
        for k in 0..<8 { v |= UInt64(bytes[index * 8 + k]) << (8 * k) }
        return v
    }

    private static func hex(_ v: UInt64) -> String {
        let s = String(v, radix: 16)
        return "0x" + String(repeating: "0", count: max(0, 16 - s.count)) + s
    }
}
