/// Branch-free float math that LLVM vectorises (libm's `expf`/`erff` are scalar calls).
///
/// `fastExp`: Cephes-style range reduction x = n·ln2 + r and a degree-7 polynomial; relative
/// error ≤ 2 ulp on [−87.3, 88.7], 0 below (no denormals), +inf above.
/// `fastErf`: Abramowitz & Stegun 7.1.26, |error| ≤ 1.5e-7 absolute in exact arithmetic (≤ 5e-7 in float32).

@inline(__always)
public func fastExp(_ x: Float) -> Float {
    let clamped = Swift.min(Swift.max(x, -87.3), 88.7)
    let n = (clamped * 1.442695040888963).rounded()
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
