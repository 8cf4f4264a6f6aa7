import ArgumentParser
import LorsConfig
import LorsTraining

/// `lors params CONFIG [--set ...] [--json]`: parameter counts of the configured model by component.
struct ParamsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "params",
        abstract: "Count the model's parameters: total, trainable and per component (shared LORS weights counted once).",
        discussion: "Detector components: backbone, neck, query, decoder. ViT: embed, encoder, head. "
            + "--json prints {\"total\", \"trainable\", \"components\"} with integer counts.")

    @OptionGroup var options: ConfigOptions

    @Flag(name: .long, help: "Print JSON instead of a table.")
    var json = false

    func run() throws {
        let config = try options.load()
        let report = ParameterReport(config: config)
        print(json ? report.json : report.table)
    }
}
