import LorsNative

/// Everything that can go wrong writing, committing, reading or loading a checkpoint. Every case names the file and,
/// where there is one, the dataset (its path inside the file, e.g. `/model/blocks.0.attn.qkv.weight`).
public enum CheckpointError: Error, CustomStringConvertible, Equatable {
    /// The file ends early (HDF5 cannot open it, or a dataset lies beyond the end of the file).
    case truncated(file: String, detail: String)
    /// The file is not a LORS checkpoint (no `/meta` group or no `format_version`), or its format is newer than this
    /// reader understands.
    case notACheckpoint(file: String, detail: String)
    /// A dataset's CRC-32 differs from the one stored with it.
    case checksumMismatch(file: String, dataset: String, stored: UInt32, computed: UInt32)
    /// A dataset listed in `/meta` (or needed by the model or optimizer being loaded) is absent.
    case missingDataset(file: String, dataset: String)
    /// A dataset has no checksum attribute.
    case missingChecksum(file: String, dataset: String)
    /// A dataset's shape differs from the tensor it is loaded into (e.g. a LORS model of another rank).
    case shapeMismatch(file: String, dataset: String, expected: [Int], found: [Int])
    /// The file holds tensors the model does not have (strict loading).
    case unexpectedDatasets(file: String, datasets: [String])
    /// The ranks did not describe the same datasets in the same order (a programming error in the caller).
    case inconsistentRanks(file: String, detail: String)
    /// The shards given for a dataset do not tile it exactly once.
    case invalidShards(file: String, dataset: String, detail: String)
    /// Writing, syncing, renaming or removing a file failed.
    case io(path: String, operation: String, detail: String)
    /// The optimizer refused the state (unknown key, missing key, wrong shape); the message is the optimizer's.
    case optimizerState(file: String, detail: String)
    /// An explicit resume path does not exist, or `auto` found only damaged checkpoints.
    case noUsableCheckpoint(directory: String, detail: String)
    /// The stored resolved config differs from the current one in keys that must not change.
    case configMismatch(differences: [ConfigDifference])
    /// A safetensors file that cannot be parsed.
    case invalidSafetensors(path: String, detail: String)
    /// An error from HDF5/MPI not covered above.
    case native(file: String, error: NativeError)
    /// Another rank reported an error; this rank stops too (`detail` is that rank's message when known).
    case failedOnAnotherRank(file: String, detail: String)
    /// `inspect` found problems (each one of the other cases, rendered as text).
    case damaged(file: String, problems: [String])

    public var description: String {
        switch self {
        case let .truncated(file, detail):
            return "checkpoint '\(file)' is truncated or unreadable: \(detail)"
        case let .notACheckpoint(file, detail):
            return "'\(file)' is not a LORS checkpoint: \(detail)"
        case let .checksumMismatch(file, dataset, stored, computed):
            return "checkpoint '\(file)': checksum mismatch in dataset '\(dataset)' (stored crc32 \(hex(stored)), computed \(hex(computed)))"
        case let .missingDataset(file, dataset):
            return "checkpoint '\(file)': missing dataset '\(dataset)'"
        case let .missingChecksum(file, dataset):
            return "checkpoint '\(file)': dataset '\(dataset)' has no crc32 attribute"
        case let .shapeMismatch(file, dataset, expected, found):
            return "checkpoint '\(file)': dataset '\(dataset)' has shape \(found), expected \(expected)"
        case let .unexpectedDatasets(file, datasets):
            let shown = datasets.prefix(8).map { "'\($0)'" }.joined(separator: ", ")
            return "checkpoint '\(file)': \(datasets.count) dataset(s) the model does not have: \(shown)\(datasets.count > 8 ? ", ..." : "")"
        case let .inconsistentRanks(file, detail):
            return "checkpoint '\(file)': ranks disagree: \(detail)"
        case let .invalidShards(file, dataset, detail):
            return "checkpoint '\(file)': shards of dataset '\(dataset)' are invalid: \(detail)"
        case let .io(path, operation, detail):
            return "checkpoint I/O error: \(operation) '\(path)': \(detail)"
        case let .optimizerState(file, detail):
            return "checkpoint '\(file)': optimizer state rejected: \(detail)"
        case let .noUsableCheckpoint(directory, detail):
            return "no usable checkpoint in '\(directory)': \(detail)"
        case let .configMismatch(differences):
            return "config differs from the checkpoint's in \(differences.count) key(s): "
                + differences.map { $0.description }.joined(separator: "; ")
        case let .invalidSafetensors(path, detail):
            return "'\(path)' is not a valid safetensors file: \(detail)"
        case let .native(file, error):
            return "checkpoint '\(file)': \(error)"
        case let .failedOnAnotherRank(file, detail):
            return "checkpoint '\(file)': another rank failed: \(detail)"
        case let .damaged(file, problems):
            return "checkpoint '\(file)' is damaged (\(problems.count) problem(s)):\n" + problems.map { "  - \($0)" }.joined(separator: "\n")
        }
    }

    /// The dataset the error is about, if any.
    public var dataset: String? {
        switch self {
        case let .checksumMismatch(_, dataset, _, _), let .missingDataset(_, dataset), let .missingChecksum(_, dataset),
             let .shapeMismatch(_, dataset, _, _), let .invalidShards(_, dataset, _):
            return dataset
        default:
            return nil
        }
    }
}

func hex(_ value: UInt32) -> String {
    let digits = String(value, radix: 16)
    return "0x" + String(repeating: "0", count: max(0, 8 - digits.count)) + digits
}
