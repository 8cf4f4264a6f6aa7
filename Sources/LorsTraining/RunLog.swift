import Foundation
import Logging
import LorsNative

/// The log handler of a run: each record becomes one line, `yyyy-MM-dd HH:mm:ss LEVEL message` (local time; LEVEL
/// one of TRACE, DEBUG, INFO, NOTICE, WARNING, ERROR, CRITICAL; metadata, if any, follows the message as sorted
/// `key=value` pairs), written to stdout when `console` is on and appended to the log file (`WORK_DIR/log.txt`),
/// the same text in both. Records below `logLevel` (the config's `log.level`) are dropped.
///
/// Only rank 0 gets one (`Logger.run`); the other ranks log nothing (`Logger.silent`). Copies share their
/// destinations (a `Logger` is a value; its level and metadata are per copy, the lines go to the same file).
public struct RunLogHandler: LogHandler {
    public var logLevel: Logger.Level
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?
    private let output: Output

    /// Writes to stdout when `console`, and appends to `path` (created if missing) when given.
    public init(path: String? = nil, console: Bool = true, level: Logger.Level = .info) throws {
        logLevel = level
        output = try Output(path: path, console: console)
    }

    /// The log file, if any.
    public var path: String? { output.path }
    /// Whether lines also go to stdout.
    public var printsToConsole: Bool { output.console }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var merged = metadata
        if let provided = metadataProvider?.get() { merged.merge(provided) { _, new in new } }
        if let explicit = event.metadata { merged.merge(explicit) { _, new in new } }
        output.write(RunLogHandler.line(level: event.level, message: "\(event.message)", metadata: merged, date: Date()))
    }

    /// The text of one record (without the newline).
    public static func line(level: Logger.Level, message: String, metadata: Logger.Metadata = [:], date: Date) -> String {
        var text = "\(timestampFormatter.string(from: date)) \(name(of: level)) \(message)"
        for (key, value) in metadata.sorted(by: { $0.key < $1.key }) { text += " \(key)=\(value)" }
        return text
    }

    /// The level as written in a line: `INFO`, `WARNING`, ... (the names Python's and mmengine's logs use).
    public static func name(of level: Logger.Level) -> String { level.rawValue.uppercased() }

    private static let timestampFormatter: DateFormatter = {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.dateFormat = "yyyy-MM-dd HH:mm:ss"
        return formatter
    }()

    /// The destinations, shared by the copies of a handler; one line at a time.
    private final class Output: @unchecked Sendable {
        let path: String?
        let console: Bool
        private let file: FileHandle?
        private let lock = NSLock()

        init(path: String?, console: Bool) throws {
            self.path = path
            self.console = console
            guard let path else { file = nil; return }
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

        func write(_ line: String) {
            let data = Data((line + "\n").utf8)
            lock.lock()
            defer { lock.unlock() }
            if console { FileHandle.standardOutput.write(data) }
            file?.write(data)
        }

        deinit { try? file?.close() }
    }
}

extension Logger {
    /// The logger of a run on rank 0: one `RunLogHandler` writing to stdout (when `console`) and to `path`.
    public static func run(path: String? = nil, console: Bool = true, level: Logger.Level = .info) throws -> Logger {
        let handler = try RunLogHandler(path: path, console: console, level: level)
        return Logger(label: "lors", factory: { _ in handler })
    }

    /// A console-only run logger at level info (tests, tools).
    public static var console: Logger { try! run() }

    /// A logger that writes nothing (ranks other than 0).
    public static var silent: Logger { Logger(label: "lors", factory: { _ in SwiftLogNoOpLogHandler() }) }
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
