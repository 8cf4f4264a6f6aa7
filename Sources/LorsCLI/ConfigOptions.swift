import ArgumentParser
import LorsConfig

/// The config file and `--set` overrides, shared by every command that reads a config.
public struct ConfigOptions: ParsableArguments {
    @Argument(help: "Config file (YAML), e.g. configs/fmnist_vit_lors.yaml.")
    public var config: String

    @Option(name: .customLong("set"), parsing: .unconditionalSingleValue,
            help: ArgumentHelp("Override a config key: --set train.batch_size=128 (repeatable).", valueName: "key=value"))
    public var overrides: [String] = []

    public init() {}

    /// Options for `config` with `overrides` (as if parsed from the command line).
    public init(config: String, overrides: [String] = []) {
        self.config = config
        self.overrides = overrides
    }

    /// Loads, merges and validates the config; errors name the file, line or key.
    public func load() throws -> Config {
        try ConfigLoader(schema: .lors).load(file: config, overrides: overrides)
    }

    /// The default work dir: `work_dirs/<config file name without .yaml>`.
    public var defaultWorkDir: String {
        var name = (config as NSString).lastPathComponent
        for ext in [".yaml", ".yml"] where name.hasSuffix(ext) { name = String(name.dropLast(ext.count)) }
        return "work_dirs/" + name
    }
}

import Foundation

/// `lors config CONFIG [--set ...]`: prints the fully resolved config (inheritance and overrides applied).
struct ConfigCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config",
        abstract: "Print the resolved config (after _base_ inheritance, presets and --set overrides), or the error.")

    @OptionGroup var options: ConfigOptions

    func run() throws {
        let config = try options.load()
        print(config.yaml(header: ["resolved from \(options.config)"]), terminator: "")
    }
}
