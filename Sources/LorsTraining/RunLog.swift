import Foundation
import LorsNative

/// The console log of rank 0: each line goes to stdout (unless quiet) and to `WORK_DIR/log.txt`.
/// Other ranks get a `RunLog` with `isEnabled == false` and print nothing.
public final class RunLog {
    public let isEnabled: Bool
    public let printsToConsole: Bool
    private var file: FileHandle?
    /// The log file path, if any.
    public let path: String?

    /// A log writing to `path` (created or appended) and, when `console`, to stdout.
    public init(path: String? = nil, console: Bool = true, enabled: Bool = true) throws {
        isEnabled = enabled
        printsToConsole = console
        self.path = path
        if let path, enabled {
            if !FileManager.default.fileExists(atPath: path) {
                guard FileManager.default.createFile(atPath: path, contents: nil) else {
                    throw TrainingError.cannotWrite(path: path, detail: "cannot create file")
                }
            }
            guard let handle = FileHandle(forWritingAtPath: path) else {
                throw TrainingError.cannotWrite(path: path, detail: "cannot open for writing")
            }
            handle.seekToEndOfFile()
            file = handle
        }
    }

    /// A console-only log (tests, tools).
    public convenience init() { try! self.init(path: nil) }

    /// Writes one line prefixed with the local time.
    public func info(_ message: String) {
        guard isEnabled else { return }
        let line = "\(RunLog.timestamp()) \(message)\n"
        if printsToConsole {
            FileHandle.standardOutput.write(line.data(using: .utf8)!)
        }
        file?.write(line.data(using: .utf8)!)
    }

    static func timestamp() -> String {
        let formatter = DateFormatter()
        formatter.dateFormat = "yyyy-MM-dd HH:mm:ss"
        return formatter.string(from: Date())
    }

    deinit { try? file?.close() }
}

/// `WORK_DIR/metrics.jsonl`: one JSON object per line (`JSONValue`'s compact text: keys in the order given,
/// shortest round-trip numbers, non-finite numbers as `null`).
public final class MetricsWriter {
    public let path: String
    private let handle: FileHandle

    public init(path: String) throws {
        self.path = path
        if !FileManager.default.fileExists(atPath: path) {
            guard FileManager.default.createFile(atPath: path, contents: nil) else {
                throw TrainingError.cannotWrite(path: path, detail: "cannot create file")
            }
        }
        guard let handle = FileHandle(forWritingAtPath: path) else {
            throw TrainingError.cannotWrite(path: path, detail: "cannot open for writing")
        }
        handle.seekToEndOfFile()
        self.handle = handle
    }

    /// Appends `record` as one line.
    public func write(_ record: JSONObject) {
        handle.write(Data((record.text() + "\n").utf8))
    }

    deinit { try? handle.close() }
}
