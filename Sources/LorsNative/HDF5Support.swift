import CHDF5
import Foundation

/// HDF5 1.10 as built by Debian is not thread-safe: every HDF5 call in this process goes through this one
/// recursive lock.
let hdf5Lock: NSRecursiveLock = {
    let lock = NSRecursiveLock()
    lock.name = "lors.hdf5"
    return lock
}()

private final class HDF5Setup: @unchecked Sendable {
    var done = false
}
private let hdf5Setup = HDF5Setup()

/// Runs `body` holding the global HDF5 lock; on first use opens the library and turns off HDF5's automatic
/// error-stack printing (the stack is read into `NativeError` instead).
func withHDF5<T>(_ body: () throws -> T) throws -> T {
    hdf5Lock.lock()
    defer { hdf5Lock.unlock() }
    if !hdf5Setup.done {
        hdf5Setup.done = true
        if H5open() < 0 {
            throw NativeError(library: .hdf5, call: "H5open", code: -1, message: "cannot initialise the HDF5 library")
        }
        _ = H5Eset_auto2(lors_h5e_default(), nil, nil)
    }
    return try body()
}

/// Throws a `NativeError` with the HDF5 error-stack text if `value` is negative; returns `value` otherwise.
@discardableResult
func h5check<T: BinaryInteger>(_ value: T, _ call: @autoclosure () -> String, context: @autoclosure () -> String?) throws -> T {
    if value < 0 {
        throw NativeError(library: .hdf5, call: call(), code: Int(value), message: hdf5ErrorStack(), context: context())
    }
    return value
}

private final class ErrorLines {
    var lines: [String] = []
}

/// The current HDF5 error stack as text (innermost last), then clears it.
func hdf5ErrorStack() -> String {
    let collector = ErrorLines()
    let unmanaged = Unmanaged.passRetained(collector)
    defer { unmanaged.release() }
    _ = H5Ewalk2(lors_h5e_default(), H5E_WALK_DOWNWARD, { _, errorPointer, clientData in
        guard let errorPointer, let clientData else { return 0 }
        let collector = Unmanaged<ErrorLines>.fromOpaque(clientData).takeUnretainedValue()
        let error = errorPointer.pointee
        let function = error.func_name.map { String(cString: $0) } ?? "?"
        let description = error.desc.map { String(cString: $0) } ?? ""
        var minor = ""
        var buffer = [CChar](repeating: 0, count: 256)
        if H5Eget_msg(error.min_num, nil, &buffer, buffer.count) > 0 {
            minor = String(cString: buffer)
        }
        var line = "\(function)(): \(description)"
        if !minor.isEmpty && minor != description { line += " (\(minor))" }
        collector.lines.append(line)
        return 0
    }, unmanaged.toOpaque())
    _ = H5Eclear2(lors_h5e_default())
    return collector.lines.isEmpty ? "no HDF5 error stack" : collector.lines.joined(separator: "; ")
}
