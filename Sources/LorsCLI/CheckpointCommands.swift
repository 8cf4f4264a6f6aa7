import ArgumentParser
import LorsDistributed
import Foundation
import LorsCheckpoint
import LorsConfig
import LorsNative
import LorsTensor
import LorsTraining

/// `lors eval CONFIG --checkpoint CKPT [--set ...] [--json]`: top-1/top-5 of a checkpoint on the configured test set.
struct EvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Evaluate a checkpoint on the test set of CONFIG: top-1 and top-5 (and a JSON line).",
        discussion: "The model is built from CONFIG (with --set overrides) and must match the checkpoint's /model "
            + "tensors exactly (a missing tensor or another shape, e.g. another LORS rank, is an error naming the dataset). "
            + "Prints a summary line, then one JSON line {\"type\":\"eval\",\"checkpoint\",\"step\",\"top1\",\"top5\",\"loss\",\"images\"} "
            + "(keys in this order; only the JSON line with --json).")

    @OptionGroup var options: ConfigOptions

    @Option(name: .long, help: ArgumentHelp("Checkpoint file (WORK_DIR/checkpoints/step_<8 digits>.h5).", valueName: "ckpt"))
    var checkpoint: String

    @Flag(name: .long, help: "Print only the JSON line.")
    var json = false

    @Option(name: .customLong("np"), help: ArgumentHelp("Evaluate on N MPI ranks (mpirun -np N lors-worker --eval-checkpoint ...).", valueName: "N"))
    var ranks: Int?

    @OptionGroup var threadOptions: ThreadOptions

    func validate() throws {
        if let ranks, ranks < 1 { throw ValidationError("--np must be at least 1, got \(ranks)") }
    }

    func run() throws {
        if let ranks {
            let settings = RunSettings(try options.load())  // fail fast, before starting any rank
            try TrainingSetup.checkTrainable(settings)
            let threads = Threading.resolve(explicit: threadOptions.threads, configured: settings.train.threads, processesOnNode: ranks)
            let status = try MPILauncher(ranks: ranks, threadsPerRank: threads)
                .run(config: options.config, workDirectory: nil, overrides: options.overrides,
                     workerArguments: ["--eval-checkpoint", checkpoint] + (json ? ["--json"] : []))
            if status != 0 { throw ExitCode(status) }
            return
        }
        let config = try options.load()
        threadOptions.apply(configured: RunSettings(config).train.threads)
        try EvalCommand.evaluate(config: config, checkpoint: checkpoint, world: LocalCommunicator(), json: json)
    }

    /// Loads `checkpoint` into the model of `config`, evaluates the test set sharded over `world`'s ranks
    /// (counts summed, no padded sample counted) and prints the result on rank 0. A model or dataset that
    /// `lors train` cannot train is refused before the checkpoint or any data is read.
    static func evaluate(config: Config, checkpoint: String, world: Communicator, json: Bool) throws {
        if let text = try report(config: config, checkpoint: checkpoint, world: world, json: json) { print(text) }
    }

    /// What `evaluate` prints on rank 0 (nil on the other ranks): a summary line (unless `json`), then the JSON line
    /// `type`, `checkpoint`, `step`, `top1`, `top5` (fractions in 0...1), `loss`, `images`, keys in this order.
    static func report(config: Config, checkpoint: String, world: Communicator, json: Bool) throws -> String? {
        let settings = RunSettings(config)
        try TrainingSetup.checkTrainable(settings)
        let reader = try CheckpointReader(path: checkpoint)
        defer { try? reader.close() }
        let result = try CheckpointTools.evaluate(checkpoint: reader, settings: settings, communicator: world)
        guard world.rank == 0 else { return nil }
        let step = reader.metadata.step
        var record: JSONObject = ["type": "eval", "checkpoint": .string(checkpoint), "step": .int(step)]
        for metric in result.values { record[metric.name] = .double(metric.value) }
        record["images"] = .int(result.samples)
        if json { return record.text() }
        return "eval \(checkpoint) (step \(step)) on \(settings.data.dataset.rawValue) test: \(result.text) (\(result.samples) images)"
            + "\n" + record.text()
    }
}

/// `lors inspect CKPT [--json]`: datasets, shapes, dtypes, metadata; every checksum verified; exit 1 when damaged.
struct InspectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "List a checkpoint's datasets, shapes, dtypes and metadata, verifying every checksum.",
        discussion: "Exits 0 when the file is intact, 1 when it is damaged (the problems are listed, each naming its dataset) "
            + "or cannot be read as a complete checkpoint (truncated, unfinished write, not a checkpoint).")

    @Argument(help: "Checkpoint file.")
    var checkpoint: String

    @Flag(name: .long, help: "Print JSON (keys file, file_size, intact, meta, optimizer, datasets, problems).")
    var json = false

    func run() throws {
        let report = try CheckpointInspector.inspect(path: checkpoint, throwIfDamaged: false)
        print(json ? report.json : report.text)
        if !report.isIntact {
            FileHandle.standardError.write(Data("error: checkpoint '\(checkpoint)' is damaged: \(report.problems.first ?? "")\n".utf8))
            throw ExitCode.failure
        }
    }
}

/// `lors export CKPT --out FILE [--merge-lors] [--format hdf5|safetensors]`: dense weights with PyTorch-style names.
struct ExportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Export a checkpoint's model weights (PyTorch state-dict names) as HDF5 or safetensors.",
        discussion: "Without --merge-lors the /model tensors are written as stored. With --merge-lors the model is built "
            + "from the checkpoint's stored config, loaded, and every LORST layer becomes a dense <layer>.weight = W_sh + B·A "
            + "and <layer>.bias (shared lors.* tensors dropped), so a plain timm/DeiT ViT loads the file. "
            + "The format defaults to safetensors for a .safetensors file name, else hdf5. Metadata: the ViT's shape settings.")

    @Argument(help: "Checkpoint file.")
    var checkpoint: String

    @Option(name: .long, help: ArgumentHelp("Output file.", valueName: "file"))
    var out: String

    @Flag(name: .customLong("merge-lors"), help: "Merge every LORST layer into a dense weight and bias.")
    var mergeLORS = false

    @Option(name: .long, help: ArgumentHelp("hdf5 or safetensors.", valueName: "format"))
    var format: String?

    @Option(name: .customLong("reference-logits"),
            help: ArgumentHelp("Also write a safetensors file with a fixed input [2, C, H, W] ('input') and our logits ('logits').",
                               valueName: "file"))
    var referenceLogits: String?

    func run() throws {
        let chosen = format ?? (out.hasSuffix(".safetensors") ? "safetensors" : "hdf5")
        guard let exportFormat = CheckpointExport.Format(rawValue: chosen) else {
            throw ValidationError("--format must be hdf5 or safetensors, got '\(chosen)'")
        }
        let reader = try CheckpointReader(path: checkpoint)
        defer { try? reader.close() }
        let settings = RunSettings(try CheckpointTools.storedConfig(reader))
        var metadata = CheckpointTools.vitMetadata(settings.model.vit)
        metadata["source"] = checkpoint
        metadata["step"] = String(reader.metadata.step)
        metadata["merged_lors"] = String(mergeLORS)
        let tensors: [(name: String, tensor: Tensor)]
        if mergeLORS || referenceLogits != nil {
            let model = try CheckpointTools.loadViT(settings.model, from: reader,
                                                    for: mergeLORS ? "lors export --merge-lors" : "lors export --reference-logits")
            tensors = mergeLORS ? CheckpointTools.denseTensors(model, mergeLORS: true) : try CheckpointExport.modelTensors(from: reader)
            if let referenceLogits {
                let (input, logits) = CheckpointTools.referenceLogits(model)
                try CheckpointExport.export([("input", input), ("logits", logits)], to: referenceLogits, format: .safetensors,
                                            metadata: ["source": checkpoint])
            }
        } else {
            tensors = try CheckpointExport.modelTensors(from: reader)
        }
        try CheckpointExport.export(tensors, to: out, format: exportFormat, metadata: metadata)
        let elements = tensors.reduce(0) { $0 + $1.tensor.count }
        print("exported \(tensors.count) tensors (\(elements) float32 values\(mergeLORS ? ", LORST merged" : "")) to \(out) as \(chosen)")
    }
}
