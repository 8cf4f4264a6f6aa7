import Foundation

/// Resident-memory readings of this process (Linux /proc).
public enum ProcessStats {
    /// Peak resident set size in MiB (VmHWM).
    public static var peakRSSMB: Double { readStatus("VmHWM:") }
    /// Current resident set size in MiB (VmRSS).
    public static var currentRSSMB: Double { readStatus("VmRSS:") }

    private static func readStatus(_ key: String) -> Double {
        guard let text = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return 0 }
        for line in text.split(separator: "\n") where line.hasPrefix(key) {
            let parts = line.split(separator: " ", omittingEmptySubsequences: true)
            if parts.count >= 2, let kb = Double(parts[1]) { return kb / 1024 }
        }
        return 0
    }
}
