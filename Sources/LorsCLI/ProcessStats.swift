import Foundation

/// Resident-memory readings of this process (Linux /proc).
public enum ProcessStats {
    /// Peak resident set size in MiB (VmHWM).
    public static var peakRSSMB: Double { readStatus("VmHWM:") }
    /// Current resident set size in MiB (VmRSS).
    public static var currentRSSMB: Double { readStatus("VmRSS:") }

    private static func readStatus(_ key: String) -> Double {
        guard let text = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return 0 }
        return statusMB(text, key: key)
    }

    /// The value of `key` (a `/proc/self/status` line in kB) in MiB, 0 when absent.
    static func statusMB(_ text: String, key: String) -> Double {
        for line in text.split(separator: "\n") where line.hasPrefix(key) {
            // "VmHWM:\t  123456 kB"; from 10 GB on the tab is the only separator ("VmHWM:\t12345678 kB").
            let parts = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            if parts.count >= 2, let kb = Double(parts[1]) { return kb / 1024 }
        }
        return 0
    }
}
