import Foundation

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

/// `WORK_DIR/metrics.jsonl`: one JSON object per line, keys in the order given.
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

    /// A JSON value of a metrics line.
    public enum Value {
        case int(Int), double(Double), string(String)

        var json: String {
            switch self {
            case .int(let v): return String(v)
            case .double(let v): return v.isFinite ? String(v) : "null"
            case .string(let s):
                var out = "\""
                for scalar in s.unicodeScalars {
                    switch scalar {
                    case "\"": out += "\\\""
                    case "\\": out += "\\\\"
                    case "\n": out += "\\n"
                    default:
                        if scalar.value < 0x20 { out += String(format: "\\u%04x", scalar.value) } else { out.unicodeScalars.append(scalar) }
                    }
                }
                return out + "\""
            }
        }
    }

    /// Appends `{"k1":v1,"k2":v2,...}` as one line.
    public func write(_ fields: [(String, Value)]) {
        let body = fields.map { "\(Value.string($0.0).json):\($0.1.json)" }.joined(separator: ",")
        handle.write(("{" + body + "}\n").data(using: .utf8)!)
    }

    deinit { try? handle.close() }
}
