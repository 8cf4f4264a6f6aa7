import Foundation
import LorsNative

/// A test switch that kills this process (SIGKILL, so no cleanup runs) in the middle of a checkpoint write, or makes
/// a checkpoint read fail.
///
/// Read from the environment variable `LORS_FAULT_INJECT`, e.g. `checkpoint-write:rank=1:after=3`: the process whose
/// MPI rank is 1 (rank 0 when serial; `rank` may be omitted for "every rank") dies right after it has written its
/// third dataset of a checkpoint. `checkpoint-read:rank=1:after=3`: on rank 1, the dataset read that follows three
/// successful ones (in a load or a verification) fails with an I/O error naming the dataset, as a failing disk would.
/// Several rules may be separated by commas; rules for other sites are ignored.
public struct FaultInjection: Equatable, Sendable {
    /// The environment variable read by `fromEnvironment()`.
    public static let environmentVariable = "LORS_FAULT_INJECT"

    /// The site of the fault (`checkpoint-write`).
    public var site: String
    /// The rank to kill; nil for every rank.
    public var rank: Int?
    /// Kill after this many datasets written by this rank.
    public var afterDatasets: Int

    public init(site: String = "checkpoint-write", rank: Int? = nil, afterDatasets: Int) {
        self.site = site
        self.rank = rank
        self.afterDatasets = afterDatasets
    }

    /// Parses one rule `site[:rank=R][:after=K]`; nil if malformed.
    public init?(rule: String) {
        let parts = rule.split(separator: ":").map { $0.trimmingCharacters(in: .whitespaces) }
        guard let site = parts.first, !site.isEmpty else { return nil }
        var rank: Int?
        var after = 0
        for part in parts.dropFirst() {
            let pair = part.split(separator: "=", maxSplits: 1).map(String.init)
            guard pair.count == 2, let value = Int(pair[1]), value >= 0 else { return nil }
            switch pair[0] {
            case "rank": rank = value
            case "after": after = value
            default: return nil
            }
        }
        self.init(site: site, rank: rank, afterDatasets: after)
    }

    /// The `checkpoint-write` rule of `LORS_FAULT_INJECT`, if set (a malformed value is reported on stderr and ignored).
    public static func fromEnvironment(site: String = "checkpoint-write") -> FaultInjection? {
        guard let value = ProcessInfo.processInfo.environment[environmentVariable], !value.isEmpty else { return nil }
        for rule in value.split(separator: ",") {
            guard let parsed = FaultInjection(rule: String(rule)) else {
                FileHandle.standardError.write(Data("warning: ignoring malformed \(environmentVariable) rule '\(rule)'\n".utf8))
                continue
            }
            if parsed.site == site { return parsed }
        }
        return nil
    }

    /// The site of read faults.
    public static let readSite = "checkpoint-read"

    /// The injected error if this (`checkpoint-read`) rule targets `rank` and `datasetsRead` successful reads happened.
    func readFailure(rank: Int, datasetsRead: Int, file: String, dataset: String) -> CheckpointError? {
        guard site == Self.readSite, self.rank == nil || self.rank == rank, datasetsRead == afterDatasets else { return nil }
        return .io(path: file, operation: "read", detail: "dataset '\(dataset)': injected read failure (\(Self.environmentVariable), rank \(rank))")
    }

    /// Kills the process with SIGKILL if this rule targets `rank` and `datasetsWritten` reached the threshold.
    func check(rank: Int, datasetsWritten: Int) {
        guard self.rank == nil || self.rank == rank, datasetsWritten >= afterDatasets else { return }
        FileHandle.standardError.write(Data("[rank \(rank)] \(Self.environmentVariable): killing this process during \(site) after \(datasetsWritten) dataset(s)\n".utf8))
        kill(getpid(), SIGKILL)
        // SIGKILL cannot be caught; wait for it to land.
        while true { pause() }
    }
}
