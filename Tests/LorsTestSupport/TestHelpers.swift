import Foundation

/// SplitMix64: a small deterministic generator for test shapes and bytes, replayable from its seed.
public struct SplitMix: RandomNumberGenerator {
    public var state: UInt64

    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A uniform integer in `lo...hi`.
    public mutating func int(_ lo: Int, _ hi: Int) -> Int { lo + Int(next() % UInt64(hi - lo + 1)) }

    /// A uniform float in [-1, 1).
    public mutating func float() -> Float { Float(next() >> 40) / Float(1 << 24) * 2 - 1 }
}

/// No `lors` executable beside the test bundle.
public struct MissingLorsExecutable: Error, CustomStringConvertible {
    public let path: String
    public var description: String { "no executable at \(path) (swift build --build-tests builds it)" }
}

/// An executable of this build (`lors`, `lors-bench`, beside the `.xctest` bundle); throws when it was not built.
public func builtExecutable(_ name: String) throws -> String {
    var directory = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")
    while !directory.hasSuffix(".xctest") && directory != "/" { directory = (directory as NSString).deletingLastPathComponent }
    let path = ((directory as NSString).deletingLastPathComponent as NSString).appendingPathComponent(name)
    guard FileManager.default.isExecutableFile(atPath: path) else { throw MissingLorsExecutable(path: path) }
    return path
}

/// The `lors` executable of this build (beside the `.xctest` bundle); throws when it was not built.
public func lorsExecutable() throws -> String { try builtExecutable("lors") }

/// What a run of the `lors` executable printed and how it ended.
public struct LorsRun {
    public let status: Int32
    public let stdout: String
    public let stderr: String
}

/// This process's environment without what an MPI initialisation inside it added: other tests of this process
/// initialise MPI as a singleton, and a child `mpirun` that inherits the singleton's job variables (`OMPI_*`, `PMIX_*`)
/// fails. The settings a user (or cluster/test.sh) gives mpirun stay.
public func environmentForChildProcesses() -> [String: String] {
    let kept: Set<String> = ["OMPI_ALLOW_RUN_AS_ROOT", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "OMPI_MCA_btl_vader_single_copy_mechanism"]
    return ProcessInfo.processInfo.environment.filter { key, _ in
        kept.contains(key) || !(key.hasPrefix("OMPI_") || key.hasPrefix("PMIX_") || key.hasPrefix("OPAL_"))
    }
}

/// Runs `executable` with `arguments` and waits for it.
public func runProcess(_ executable: String, _ arguments: [String]) throws -> LorsRun {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    process.environment = environmentForChildProcesses()
    let out = Pipe(), err = Pipe()
    process.standardOutput = out
    process.standardError = err
    try process.run()
    let stdout = out.fileHandleForReading.readDataToEndOfFile(), stderr = err.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return LorsRun(status: process.terminationStatus, stdout: String(decoding: stdout, as: UTF8.self),
                   stderr: String(decoding: stderr, as: UTF8.self))
}

/// Runs the `lors` executable of this build with `arguments` and waits for it.
public func runLors(_ arguments: [String]) throws -> LorsRun { try runProcess(try lorsExecutable(), arguments) }
