import Foundation
import LorsNative
import XCTest

// XCTest runs every test of this bundle serially on one thread, which is what MPI (funneled) and HDF5 (not
// thread-safe) need; LorsNative additionally serialises all HDF5 calls behind one lock.

/// A fresh directory under the system temporary directory, removed by the returned cleanup closure.
func makeTemporaryDirectory(_ label: String = "lors-native-tests") throws -> URL {
    let url = FileManager.default.temporaryDirectory
        .appendingPathComponent("\(label)-\(getpid())-\(UUID().uuidString)", isDirectory: true)
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}

/// Asserts that `body` throws a `NativeError` and returns it for further checks.
@discardableResult
func assertThrowsNativeError<T>(_ body: @autoclosure () throws -> T, _ message: String = "",
                                file: StaticString = #filePath, line: UInt = #line) -> NativeError? {
    do {
        _ = try body()
        XCTFail("expected a NativeError, nothing was thrown. \(message)", file: file, line: line)
        return nil
    } catch let error as NativeError {
        return error
    } catch {
        XCTFail("expected a NativeError, got \(type(of: error)): \(error). \(message)", file: file, line: line)
        return nil
    }
}

/// The values 0, 1, 2, ... as floats, scaled so that no two are equal after a round trip.
func flatIndexValues(_ count: Int, offset: Int = 0) -> [Float] {
    (0..<count).map { Float($0 + offset) * 0.5 + 1 }
}
