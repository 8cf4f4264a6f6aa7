// Rendering the resolved config back to YAML, for checkpoints and logs.

extension Config {
    /// The fully resolved config as YAML: every schema key, in schema order, two-space indentation, lists in flow
    /// style (`[8, 11]`). The text is stable for equal values and loads back (`ConfigLoader.load(yaml:)`) to the same
    /// values. Floats always carry a '.' (`1.0e-08`) so that PyYAML reads them as floats too.
    ///
    /// - Parameter header: optional comment lines written first (each gets a `# ` prefix).
    public func yaml(header: [String] = []) -> String {
        var lines = header.map { "# \($0)" }
        render(schema.nodes, prefix: "", indent: "", into: &lines)
        return lines.joined(separator: "\n") + "\n"
    }

    /// `yaml` with the header `resolved from <sourceFile>`: what a run writes to `WORK_DIR/config.yaml` and stores
    /// in its checkpoints.
    public var resolvedYAML: String { yaml(header: ["resolved from \(sourceFile)"]) }

    private func render(_ nodes: [SchemaNode], prefix: String, indent: String, into lines: inout [String]) {
        for node in nodes {
            let path = prefix.isEmpty ? node.name : "\(prefix).\(node.name)"
            switch node {
            case let .field(spec):
                lines.append("\(indent)\(spec.name): \(value(path).yamlText)")
            case let .section(name, _, children):
                if children.isEmpty {
                    lines.append("\(indent)\(name): {}")
                } else {
                    lines.append("\(indent)\(name):")
                    render(children, prefix: path, indent: indent + "  ", into: &lines)
                }
            }
        }
    }
}
