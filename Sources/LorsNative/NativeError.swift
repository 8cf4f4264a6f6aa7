/// An error from one of the native libraries LorsNative wraps (MPI, HDF5, zlib), or a misuse of a
/// wrapper detected before the library was called.
///
/// The description names the library, the C call, its return code, the library's own message and, where
/// known, what was being worked on (a file, a dataset path) and the MPI rank that saw the error:
///
///     [rank 1] HDF5 error in H5Dopen2 (code -1) for '/model/w' in 'ckpt.h5': H5Dopen2(): unable to open dataset ...
public struct NativeError: Error, CustomStringConvertible, Equatable, Sendable {
    /// Which library reported the error.
    public enum Library: String, Sendable {
        /// The MPI library (OpenMPI); `code` is the MPI error code.
        case mpi = "MPI"
        /// HDF5; `code` is the negative return value, `message` the error-stack text.
        case hdf5 = "HDF5"
        /// zlib; `code` is the zlib status (`Z_DATA_ERROR`, `Z_BUF_ERROR`, ...).
        case zlib = "zlib"
        /// The operating system (file I/O); `code` is `errno`.
        case system = "system"
        /// A wrapper argument was invalid (wrong count, range out of bounds, ...); the library was not called.
        case usage = "usage"
    }

    /// The library that reported the error.
    public let library: Library
    /// The C function (or wrapper operation) that failed, e.g. `MPI_Allreduce` or `H5Dwrite`.
    public let call: String
    /// The library's return code.
    public let code: Int
    /// The library's own message (`MPI_Error_string`, the HDF5 error stack, `z_stream.msg`, `strerror`).
    public let message: String
    /// What the call was working on (a file path, a dataset path), if known.
    public let context: String?
    /// The MPI world rank of the process that saw the error, if MPI is initialised.
    public let rank: Int?

    /// Creates an error; `rank` defaults to this process's world rank when MPI is initialised.
    public init(library: Library, call: String, code: Int, message: String, context: String? = nil,
                rank: Int? = MPIEnvironment.cachedWorldRank) {
        self.library = library
        self.call = call
        self.code = code
        self.message = message
        self.context = context
        self.rank = rank
    }

    public var description: String {
        var text = ""
        if let rank { text += "[rank \(rank)] " }
        text += "\(library.rawValue) error in \(call) (code \(code))"
        if let context { text += " for \(context)" }
        let trimmed = message.trimmingTrailingWhitespace()
        if !trimmed.isEmpty { text += ": \(trimmed)" }
        return text
    }

    static func usage(_ call: String, _ message: String, context: String? = nil) -> NativeError {
        NativeError(library: .usage, call: call, code: -1, message: message, context: context)
    }
}

extension String {
    func trimmingTrailingWhitespace() -> String {
        var scalars = Substring(self)
        while let last = scalars.last, last.isWhitespace || last == "\0" { scalars.removeLast() }
        return String(scalars)
    }
}
