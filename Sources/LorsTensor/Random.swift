/// Counter-based randomness (Philox4x32-10): every draw is a pure function of
/// (seed, purpose, two stream counters, element index) — never of process history or rank.
///
/// Conventions: `purpose` names the call site ("init.blocks.3.attn.qkv.weight", "shuffle",
/// "dropout.blocks.2"), `stream.0` is the epoch or step, `stream.1` the global sample index
/// (or 0). So N ranks drawing for their slice of a global batch reproduce exactly what one
/// rank would draw for the whole batch, and a resumed run needs only the step.
public struct RandomKey: Hashable, Sendable {
    public var seed: UInt64
    public var purpose: UInt32
    public var stream: (UInt64, UInt64)

    /// A key for `purpose` (hashed with FNV-1a) under `seed`.
    public init(seed: UInt64, purpose: String, stream: (UInt64, UInt64) = (0, 0)) {
        self.seed = seed
        self.purpose = RandomKey.hash(purpose)
        self.stream = stream
    }

    /// The same key with other stream counters.
    public func with(_ a: UInt64, _ b: UInt64 = 0) -> RandomKey {
        var k = self
        k.stream = (a, b)
        return k
    }

    /// 32-bit FNV-1a of a string (stable across runs and platforms).
    public static func hash(_ s: String) -> UInt32 {
        var h: UInt32 = 2_166_136_261
        for byte in s.utf8 { h = (h ^ UInt32(byte)) &* 16_777_619 }
        return h
    }

    public static func == (a: RandomKey, b: RandomKey) -> Bool {
        a.seed == b.seed && a.purpose == b.purpose && a.stream == b.stream
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(seed); hasher.combine(purpose); hasher.combine(stream.0); hasher.combine(stream.1)
    }
}

/// Philox4x32 with 10 rounds (Salmon et al., SC'11), the generator of cuRAND and PyTorch's CUDA RNG.
@inline(__always)
public func philox4x32(counter: (UInt32, UInt32, UInt32, UInt32), key: (UInt32, UInt32)) -> (UInt32, UInt32, UInt32, UInt32) {
    var (c0, c1, c2, c3) = counter
    var (k0, k1) = key
    for _ in 0..<10 {
        let p0 = UInt64(0xD251_1F53) &* UInt64(c0)
        let p1 = UInt64(0xCD9E_8D57) &* UInt64(c2)
        let n0 = UInt32(truncatingIfNeeded: p1 >> 32) ^ c1 ^ k0
        let n2 = UInt32(truncatingIfNeeded: p0 >> 32) ^ c3 ^ k1
        c1 = UInt32(truncatingIfNeeded: p1)
        c3 = UInt32(truncatingIfNeeded: p0)
        c0 = n0
        c2 = n2
        k0 = k0 &+ 0x9E37_79B9
        k1 = k1 &+ 0xBB67_AE85
    }
    return (c0, c1, c2, c3)
}

public extension RandomKey {
    /// The four 32-bit words of block `block` of this key's stream.
    @inline(__always)
    func block(_ block: UInt64) -> (UInt32, UInt32, UInt32, UInt32) {
        // Key: seed mixed with the purpose; counter: block index, sample index, epoch/step.
        let k0 = UInt32(truncatingIfNeeded: seed) ^ purpose
        let k1 = UInt32(truncatingIfNeeded: seed >> 32) ^ (purpose &* 0x85EB_CA6B)
        let s0 = UInt32(truncatingIfNeeded: stream.0) ^ UInt32(truncatingIfNeeded: stream.0 >> 32) &* 0x27D4_EB2F
        let s1 = UInt32(truncatingIfNeeded: stream.1) ^ UInt32(truncatingIfNeeded: stream.1 >> 32) &* 0x1656_67B1
        return philox4x32(counter: (UInt32(truncatingIfNeeded: block), UInt32(truncatingIfNeeded: block >> 32) ^ s1, s0, s1),
                          key: (k0, k1))
    }

    /// Word `index` of the stream as a uniform float in [0, 1) (24 bits).
    @inline(__always)
    func uniform(at index: Int) -> Float {
        let b = block(UInt64(index >> 2))
        let w: UInt32
        switch index & 3 { case 0: w = b.0; case 1: w = b.1; case 2: w = b.2; default: w = b.3 }
        return Float(w >> 8) * (1.0 / 16_777_216.0)
    }

    /// `count` uniforms in [low, high), element i a function of (key, i) only.
    func uniforms(_ count: Int, low: Float = 0, high: Float = 1) -> [Float] {
        var out = [Float](repeating: 0, count: count)
        out.withUnsafeMutableBufferPointer { fillUniform($0.baseAddress!, count: count, low: low, high: high) }
        return out
    }

    /// Fills host memory with uniforms in [low, high).
    func fillUniform(_ p: UnsafeMutablePointer<Float>, count: Int, low: Float, high: Float, startIndex: Int = 0) {
        let span = high - low
        parallelFor((count + 3) / 4, grain: 8192) { s, e in
            for blk in s..<e {
                let b = self.block(UInt64((startIndex >> 2) + blk))
                let words = [b.0, b.1, b.2, b.3]
                for j in 0..<4 where blk * 4 + j < count {
                    p[blk * 4 + j] = low + span * (Float(words[j] >> 8) * (1.0 / 16_777_216.0))
                }
            }
        }
    }

    /// `count` standard normals (Box–Muller on pairs of uniforms), scaled by `std`, plus `mean`.
    func normals(_ count: Int, mean: Float = 0, std: Float = 1) -> [Float] {
        var out = [Float](repeating: 0, count: count)
        for i in stride(from: 0, to: count, by: 2) {
            let b = block(UInt64(i >> 1))
            let u1 = (Double(b.0 >> 8) + 0.5) / 16_777_216.0
            let u2 = Double(b.1 >> 8) / 16_777_216.0
            let r = (-2 * _log(u1)).squareRoot()
            out[i] = mean + std * Float(r * _cos(2 * Double.pi * u2))
            if i + 1 < count { out[i + 1] = mean + std * Float(r * _sin(2 * Double.pi * u2)) }
        }
        return out
    }

    /// A uniform integer in `0..<n` drawn from word `index`.
    func integer(below n: Int, at index: Int) -> Int {
        let b = block(UInt64(index))
        let wide = (UInt64(b.0) << 32) | UInt64(b.1)
        return Int(wide % UInt64(n))
    }

    /// A permutation of `0..<n` (Fisher–Yates driven by this key), identical on every rank.
    func permutation(_ n: Int) -> [Int] {
        var p = Array(0..<n)
        if n < 2 { return p }
        for i in stride(from: n - 1, to: 0, by: -1) {
            p.swapAt(i, integer(below: i + 1, at: i))
        }
        return p
    }
}

import Foundation
@inline(__always) private func _log(_ x: Double) -> Double { Foundation.log(x) }
@inline(__always) private func _cos(_ x: Double) -> Double { Foundation.cos(x) }
@inline(__always) private func _sin(_ x: Double) -> Double { Foundation.sin(x) }
