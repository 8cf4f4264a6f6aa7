import ArgumentParser
import Foundation
import LorsConfig
import LorsNative
import LorsTraining

/// `lors params CONFIG [--set ...] [--json] [--flops [--batch B]]`: parameter counts of the configured model by
/// component; with `--flops`, each LORS layer's evaluation path and forward FLOPs at the stated input size.
struct ParamsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "params",
        abstract: "Count the model's parameters: total, trainable and per component (shared LORS weights counted once).",
        discussion: "Detector components: backbone, neck, query, decoder. ViT: embed, encoder (blocks and the shared "
            + "LORS weights lors.*), head. --json prints {\"total\", \"trainable\", \"components\"} with integer counts. "
            + "--flops adds, for LORS models, each LORS layer's path (materialised or factored, whichever costs fewer "
            + "multiply-adds) and its forward FLOPs for --batch images (ViT: all tokens; AdaMixer: all queries); "
            + "with --json under the key \"lors_flops\".")

    @OptionGroup var options: ConfigOptions

    @Flag(name: .long, help: "Print JSON instead of a table.")
    var json = false

    @Flag(name: .long, help: "Also print each LORS layer's evaluation path and forward FLOPs.")
    var flops = false

    @Option(name: .long, help: "Images per forward for --flops.")
    var batch = 1

    func validate() throws {
        guard batch > 0 else { throw ValidationError("--batch must be positive, got \(batch)") }
    }

    func run() throws {
        print(try output())
    }

    /// What `run` prints.
    func output() throws -> String {
        let settings = RunSettings(try options.load())  // every model.type: counting needs no trainer
        let model = ModelBuilder.model(settings.model)
        let report = ParameterReport(model: model, type: settings.model.type)
        let costs = flops ? LORSCostReport(model: model, batch: batch) : nil
        if json {
            var object = report.jsonObject
            if let costs { object["lors_flops"] = .object(costs.jsonObject) }
            return object.text()
        }
        guard flops else { return report.table }
        return report.table + "\n\n" + (costs?.table ?? "no LORS layers in this model")
    }
}
