// Cross-key rules of the lors schema: checks that involve more than one key.

extension ConfigSchema {
    /// The rules of `ConfigSchema.lors`, run in order after presets.
    static var lorsRules: [ConfigRule] {
        [
            ConfigRule("vit: embed_dim divisible by num_heads") { config in
                guard config.string("model.type") == "vit" else { return }
                let width = config.int("model.vit.embed_dim"), heads = config.int("model.vit.num_heads")
                guard width % heads == 0 else {
                    throw ConfigError(.inconsistent(keys: ["model.vit.embed_dim", "model.vit.num_heads"],
                                                    detail: "embed_dim \(width) is not a multiple of num_heads \(heads)"))
                }
            },
            ConfigRule("vit: image_size divisible by patch_size") { config in
                guard config.string("model.type") == "vit" else { return }
                let size = config.int("model.vit.image_size"), patch = config.int("model.vit.patch_size")
                guard size % patch == 0 else {
                    throw ConfigError(.inconsistent(keys: ["model.vit.image_size", "model.vit.patch_size"],
                                                    detail: "image_size \(size) is not a multiple of patch_size \(patch)"))
                }
            },
            ConfigRule("vit + lors: one group count per block") { config in
                guard config.string("model.type") == "vit", config.bool("model.lors.enabled") else { return }
                let depth = config.int("model.vit.depth")
                for key in ["model.lors.attn_groups", "model.lors.ffn_groups"] {
                    let count = config.intList(key).count
                    guard count == depth else {
                        throw ConfigError(.inconsistent(
                            keys: [key, "model.vit.depth"],
                            detail: "\(key) has \(count) entries but model.vit.depth is \(depth) (one entry per block)"))
                    }
                }
                guard !config.stringList("model.lors.targets").isEmpty else {
                    throw ConfigError(.inconsistent(keys: ["model.lors.enabled", "model.lors.targets"],
                                                    detail: "LORS is enabled but targets is empty"))
                }
            },
            ConfigRule("step schedule: increasing milestones") { config in
                guard config.string("lr_schedule.policy") == "step" else { return }
                let milestones = config.intList("lr_schedule.milestones")
                for (earlier, later) in zip(milestones, milestones.dropFirst()) where later <= earlier {
                    throw ConfigError(.inconsistent(
                        keys: ["lr_schedule.milestones", "lr_schedule.policy"],
                        detail: "milestones must be strictly increasing for the step policy, found \(milestones)"))
                }
            },
        ]
    }
}
