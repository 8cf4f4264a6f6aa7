import XCTest
import LorsTensor

/// Asserts `actual` and `expected` agree elementwise: |a − e| ≤ atol + rtol·|e|.
public func assertClose(_ actual: [Float], _ expected: [Float], rtol: Float = 1e-5, atol: Float = 1e-6,
                        _ message: String = "", file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(actual.count, expected.count, "element count \(message)", file: file, line: line)
    var worst = 0, worstExcess: Float = -1
    for i in 0..<min(actual.count, expected.count) {
        let excess = abs(actual[i] - expected[i]) - (atol + rtol * abs(expected[i]))
        if excess > worstExcess || actual[i].isNaN { worstExcess = actual[i].isNaN ? .infinity : excess; worst = i }
    }
    if worstExcess > 0 {
        XCTFail("not close \(message): element \(worst): \(actual[worst]) vs expected \(expected[worst]) (rtol \(rtol), atol \(atol))",
                file: file, line: line)
    }
}

/// Tensor overload of `assertClose` (shapes must match too).
public func assertClose(_ actual: Tensor, _ expected: Tensor, rtol: Float = 1e-5, atol: Float = 1e-6,
                        _ message: String = "", file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(actual.shape, expected.shape, "shape \(message)", file: file, line: line)
    assertClose(actual.toArray(), expected.toArray(), rtol: rtol, atol: atol, message, file: file, line: line)
}

/// Random tensor with values in [low, high), keyed by `name` (reproducible).
public func randomTensor(_ shape: [Int], _ name: String, low: Float = -1, high: Float = 1, requiresGrad: Bool = true) -> Tensor {
    let n = shape.reduce(1, *)
    return Tensor(RandomKey(seed: 1234, purpose: name).uniforms(n, low: low, high: high), shape: shape, requiresGrad: requiresGrad)
}

/// Runs a central-difference gradient check and fails with the first mismatches.
public func assertGradients(_ inputs: [Tensor], check: GradientCheck = GradientCheck(), _ message: String = "",
                            file: StaticString = #filePath, line: UInt = #line, _ function: ([Tensor]) -> Tensor) {
    let mismatches = check.run(inputs: inputs, function)
    if !mismatches.isEmpty {
        XCTFail("gradient check failed \(message): \(mismatches.count) mismatches, first: \(mismatches.prefix(3))", file: file, line: line)
    }
}
