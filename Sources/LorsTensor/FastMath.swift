/// Branch-free float math that LLVM vectorises (libm's `expf`/`erff` are scalar calls).
///
/// `fastExp`: Cephes-style range reduction x = n·ln2 + r and a degree-7 polynomial; relative
/// error ≤ 2 ulp on [−87.3, 88.7], 0 below (no denormals), +inf above.
/// `fastErf`: Abramowitz & Stegun 7.1.26, |error| ≤ 1.5e-7 absolute in exact arithmetic (≤ 5e-7 in float32).

@inline(__always)
public func fastExp(_ x: Float) -> Float {
    let clamped = Swift.min(Swift.max(x, -87.3), 88.7)
    // Round to nearest by adding and subtracting 1.5·2^23 (pure SSE2 arithmetic; rintf is a libcall
    // on the baseline x86-64 target and blocks vectorisation).
    let n = (clamped * 1.442695040888963 + 12_582_912) - 12_582_912
    var r = clamped - n * 0.693359375
    r = r - n * -2.12194440e-4
    var p: Float = 1.9875691500e-4
    p = p * r + 1.3981999507e-3
    p = p * r + 8.3334519073e-3
    p = p * r + 4.1665795894e-2
    p = p * r + 1.6666665459e-1
    p = p * r + 5.0000001201e-1
    p = p * r * r + r + 1
    let scale = Float(bitPattern: UInt32(truncatingIfNeeded: Int32(n) + 127) << 23)
    let y = p * scale
    return x < -87.3 ? 0 : (x > 88.7 ? .infinity : y)
}

@inline(__always)
public func fastErf(_ x: Float) -> Float {
    let a = Swift.abs(x)
    let t = 1 / (1 + 0.3275911 * a)
    var poly: Float = 1.061405429
    poly = poly * t - 1.453152027
    poly = poly * t + 1.421413741
    poly = poly * t - 0.284496736
    poly = poly * t + 0.254829592
    let y = 1 - poly * t * fastExp(-a * a)
    return x < 0 ? -y : y
}

/// Eight-lane `fastExp` (explicit SIMD: vectorised on any x86-64 target). `@_transparent`: plain
/// `@inline(__always)` left it an out-of-line call per 8 lanes inside the GELU/softmax loops (4% of a step).
@_transparent
public func fastExp(_ x: SIMD8<Float>) -> SIMD8<Float> {
    let low = SIMD8<Float>(repeating: -87.3), high = SIMD8<Float>(repeating: 88.7)
    let clamped = x.replacing(with: low, where: x .< low).replacing(with: high, where: x .> high)
    // t = x·log2(e) + 1.5·2^23 holds round(x·log2 e) in its low mantissa bits; n is that integer.
    let t = clamped * 1.442695040888963 + 12_582_912
    let n = t - 12_582_912
    var r = clamped - n * 0.693359375
    r = r - n * -2.12194440e-4
    var p = SIMD8<Float>(repeating: 1.9875691500e-4)
    p = p * r + 1.3981999507e-3
    p = p * r + 8.3334519073e-3
    p = p * r + 4.1665795894e-2
    p = p * r + 1.6666665459e-1
    p = p * r + 5.0000001201e-1
    p = p * r * r + r + 1
    let integer = unsafeBitCast(t, to: SIMD8<UInt32>.self) &- 0x4B40_0000  // bits of 1.5·2^23
    let scale = unsafeBitCast((integer &+ 127) &<< 23, to: SIMD8<Float>.self)
    var y = p * scale
    y.replace(with: 0, where: x .< -87.3)
    y.replace(with: Float.infinity, where: x .> 88.7)
    return y
}

/// Eight-lane `fastErf`.
@_transparent
public func fastErf(_ x: SIMD8<Float>) -> SIMD8<Float> {
    let a = x.replacing(with: -x, where: x .< 0)
    let t = 1 / (1 + 0.3275911 * a)
    var poly = SIMD8<Float>(repeating: 1.061405429)
    poly = poly * t - 1.453152027
    poly = poly * t + 1.421413741
    poly = poly * t - 0.284496736
    poly = poly * t + 0.254829592
    let y = 1 - poly * t * fastExp(-a * a)
    return y.replacing(with: -y, where: x .< 0)
}

/// Applies `vector` to 8-element blocks of `x[s..<e]` and `scalar` to the tail.
@inline(__always)
func mapSIMD8(_ x: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, _ s: Int, _ e: Int,
              _ vector: (SIMD8<Float>) -> SIMD8<Float>, _ scalar: (Float) -> Float) {
    var i = s
    let rawIn = UnsafeRawPointer(x), rawOut = UnsafeMutableRawPointer(out)
    while i + 8 <= e {
        let v = rawIn.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self)
        rawOut.storeBytes(of: vector(v), toByteOffset: i * 4, as: SIMD8<Float>.self)
        i += 8
    }
    while i < e { out[i] = scalar(x[i]); i += 1 }
}

/// `out = g * f'(x)` over 8-element blocks (tail scalar).
@inline(__always)
func mapSIMD8(_ x: UnsafePointer<Float>, _ g: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, _ s: Int, _ e: Int,
              _ vector: (SIMD8<Float>, SIMD8<Float>) -> SIMD8<Float>, _ scalar: (Float, Float) -> Float) {
    var i = s
    let rawX = UnsafeRawPointer(x), rawG = UnsafeRawPointer(g), rawOut = UnsafeMutableRawPointer(out)
    while i + 8 <= e {
        let v = rawX.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self)
        let w = rawG.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self)
        rawOut.storeBytes(of: vector(v, w), toByteOffset: i * 4, as: SIMD8<Float>.self)
        i += 8
    }
    while i < e { out[i] = scalar(x[i], g[i]); i += 1 }
}
