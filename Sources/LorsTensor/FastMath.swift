import CVectorMath

/// Branch-free float math that LLVM vectorises (libm's `expf`/`erff` are scalar calls).
///
/// `fastExp`: Cephes-style range reduction x = n·ln2 + r and a degree-7 polynomial; relative
/// error ≤ 2 ulp on [−87.3, 88.7], 0 below (no denormals), +inf above.
/// `fastErf`: Abramowitz & Stegun 7.1.26, |error| ≤ 1.5e-7 absolute in exact arithmetic (≤ 5e-7 in float32).

/// The kernels' SIMD vector: 16 lanes where the build targets AVX-512 (`LORS_AVX512`, set by Package.swift from the
/// build machine's CPU flags), 8 lanes (AVX2 or SSE pairs) otherwise.
#if LORS_AVX512
public typealias FloatVector = SIMD16<Float>
public typealias UInt32Vector = SIMD16<UInt32>
#else
public typealias FloatVector = SIMD8<Float>
public typealias UInt32Vector = SIMD8<UInt32>
#endif

/// `a·b + c`, one fused multiply-add where the target has FMA (`LORS_FMA`), a multiply and an add otherwise. The
/// scalar and vector overloads round alike, so a SIMD body and its scalar tail give the same bits per element (and
/// results do not depend on where the thread chunks split a loop).
@_transparent @usableFromInline
func muladd(_ a: Float, _ b: Float, _ c: Float) -> Float {
    #if LORS_FMA
    return c.addingProduct(a, b)
    #else
    return a * b + c
    #endif
}

@_transparent @usableFromInline
func muladd(_ a: FloatVector, _ b: FloatVector, _ c: FloatVector) -> FloatVector {
    #if LORS_FMA && LORS_AVX512
    return lors_fma16(a, b, c)
    #elseif LORS_FMA
    return lors_fma8(a, b, c)
    #else
    return a * b + c
    #endif
}

@inline(__always)
public func fastExp(_ x: Float) -> Float {
    let clamped = Swift.min(Swift.max(x, -87.3), 88.7)
    // Round to nearest by adding and subtracting 1.5·2^23 (pure arithmetic; rintf is a libcall on the baseline
    // x86-64 target and blocks vectorisation).
    let t = muladd(clamped, 1.442695040888963, 12_582_912)
    let n = t - 12_582_912
    var r = muladd(n, -0.693359375, clamped)
    r = muladd(n, 2.12194440e-4, r)
    var p: Float = 1.9875691500e-4
    p = muladd(p, r, 1.3981999507e-3)
    p = muladd(p, r, 8.3334519073e-3)
    p = muladd(p, r, 4.1665795894e-2)
    p = muladd(p, r, 1.6666665459e-1)
    p = muladd(p, r, 5.0000001201e-1)
    p = muladd(p * r, r, r) + 1
    let scale = Float(bitPattern: (t.bitPattern &- 0x4B40_0000 &+ 127) &<< 23)
    let y = p * scale
    return x < -87.3 ? 0 : (x > 88.7 ? .infinity : y)
}

@inline(__always)
public func fastErf(_ x: Float) -> Float {
    let a = Swift.abs(x)
    return withSignOf(x, erfMagnitude(a, fastExp(-a * a)))
}

/// |erf(z)| by A&S 7.1.26 from a = |z| and e = exp(−a²) (GELU's derivative has that exponential already):
/// 1 − t·poly(t)·e with t = 1 / (1 + 0.3275911·a).
@_transparent @usableFromInline
func erfMagnitude(_ a: Float, _ e: Float) -> Float {
    let t = 1 / muladd(0.3275911, a, 1)
    var poly: Float = 1.061405429
    poly = muladd(poly, t, -1.453152027)
    poly = muladd(poly, t, 1.421413741)
    poly = muladd(poly, t, -0.284496736)
    poly = muladd(poly, t, 0.254829592)
    return 1 - poly * t * e
}

/// `fastExp` on a whole vector, the same operations as the scalar one lane by lane. `@_transparent`: plain
/// `@inline(__always)` left it an out-of-line call per vector inside the GELU/softmax loops (4% of a step).
@_transparent
public func fastExp(_ x: FloatVector) -> FloatVector {
    #if LORS_AVX512
    let clamped = lors_clamp16(x, -87.3, 88.7)
    #else
    let clamped = lors_clamp8(x, -87.3, 88.7)
    #endif
    // t = x·log2(e) + 1.5·2^23 holds round(x·log2 e) in its low mantissa bits; n is that integer.
    let t = muladd(clamped, FloatVector(repeating: 1.442695040888963), FloatVector(repeating: 12_582_912))
    let n = t - 12_582_912
    var r = muladd(n, FloatVector(repeating: -0.693359375), clamped)
    r = muladd(n, FloatVector(repeating: 2.12194440e-4), r)
    var p = FloatVector(repeating: 1.9875691500e-4)
    p = muladd(p, r, FloatVector(repeating: 1.3981999507e-3))
    p = muladd(p, r, FloatVector(repeating: 8.3334519073e-3))
    p = muladd(p, r, FloatVector(repeating: 4.1665795894e-2))
    p = muladd(p, r, FloatVector(repeating: 1.6666665459e-1))
    p = muladd(p, r, FloatVector(repeating: 5.0000001201e-1))
    p = muladd(p * r, r, r) + 1
    let integer = unsafeBitCast(t, to: UInt32Vector.self) &- 0x4B40_0000  // bits of 1.5·2^23
    let scale = unsafeBitCast((integer &+ 127) &<< 23, to: FloatVector.self)
    var y = p * scale
    y.replace(with: 0, where: x .< -87.3)
    y.replace(with: Float.infinity, where: x .> 88.7)
    return y
}

/// `fastErf` on a whole vector (lane by lane the scalar one).
@_transparent
public func fastErf(_ x: FloatVector) -> FloatVector {
    let a = magnitude(x)
    return withSignOf(x, erfMagnitude(a, fastExp(-a * a)))
}

/// `erfMagnitude` lane by lane.
@_transparent @usableFromInline
func erfMagnitude(_ a: FloatVector, _ e: FloatVector) -> FloatVector {
    let t = 1 / muladd(FloatVector(repeating: 0.3275911), a, FloatVector(repeating: 1))
    var poly = FloatVector(repeating: 1.061405429)
    poly = muladd(poly, t, FloatVector(repeating: -1.453152027))
    poly = muladd(poly, t, FloatVector(repeating: 1.421413741))
    poly = muladd(poly, t, FloatVector(repeating: -0.284496736))
    poly = muladd(poly, t, FloatVector(repeating: 0.254829592))
    return 1 - poly * t * e
}

/// `y` with its sign bit flipped where `x`'s is set (the scalar twin of the vector `withSignOf`).
@_transparent
public func withSignOf(_ x: Float, _ y: Float) -> Float { Float(bitPattern: y.bitPattern ^ (x.bitPattern & 0x8000_0000)) }

/// |x| lane by lane (clears the sign bits: no compares or blends).
@_transparent
public func magnitude(_ x: FloatVector) -> FloatVector {
    unsafeBitCast(unsafeBitCast(x, to: UInt32Vector.self) & 0x7FFF_FFFF, to: FloatVector.self)
}

/// `y` with its sign bit flipped in the lanes where `x`'s sign bit is set: −y for x < 0 (and for x = −0).
@_transparent
public func withSignOf(_ x: FloatVector, _ y: FloatVector) -> FloatVector {
    let sign = unsafeBitCast(x, to: UInt32Vector.self) & 0x8000_0000
    return unsafeBitCast(unsafeBitCast(y, to: UInt32Vector.self) ^ sign, to: FloatVector.self)
}

/// Applies `vector` to whole vectors of `x[s..<e]` and `scalar` to the tail.
@inline(__always)
func mapVector(_ x: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, _ s: Int, _ e: Int,
              _ vector: (FloatVector) -> FloatVector, _ scalar: (Float) -> Float) {
    var i = s
    let rawIn = UnsafeRawPointer(x), rawOut = UnsafeMutableRawPointer(out)
    while i + FloatVector.scalarCount <= e {
        let v = rawIn.loadUnaligned(fromByteOffset: i * 4, as: FloatVector.self)
        rawOut.storeBytes(of: vector(v), toByteOffset: i * 4, as: FloatVector.self)
        i += FloatVector.scalarCount
    }
    while i < e { out[i] = scalar(x[i]); i += 1 }
}

/// `out = g * f'(x)` over whole vectors (tail scalar).
@inline(__always)
func mapVector(_ x: UnsafePointer<Float>, _ g: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, _ s: Int, _ e: Int,
              _ vector: (FloatVector, FloatVector) -> FloatVector, _ scalar: (Float, Float) -> Float) {
    var i = s
    let rawX = UnsafeRawPointer(x), rawG = UnsafeRawPointer(g), rawOut = UnsafeMutableRawPointer(out)
    while i + FloatVector.scalarCount <= e {
        let v = rawX.loadUnaligned(fromByteOffset: i * 4, as: FloatVector.self)
        let w = rawG.loadUnaligned(fromByteOffset: i * 4, as: FloatVector.self)
        rawOut.storeBytes(of: vector(v, w), toByteOffset: i * 4, as: FloatVector.self)
        i += FloatVector.scalarCount
    }
    while i < e { out[i] = scalar(x[i], g[i]); i += 1 }
}
