import ArgumentParser
import Foundation
import LorsTraining

/// `lors train`'s single-node debugging flags (without `--np`).
public struct DebugOptions: ParsableArguments {
    @Flag(name: .long, help: ArgumentHelp(
        "Debugging mode: stop at the first NaN/Inf and name the op (forward output or backward gradient) and the "
            + "parameter where it appeared. Runs are deterministic anyway (counter-based randomness, fixed-order reductions)."))
    public var debug = false

    @Flag(name: .long, help: ArgumentHelp(
        "Build the model, load one batch, run one training step, print shapes, parameters per component, memory and "
            + "timing, and exit 0 (nothing is saved)."))
    public var check = false

    public init() {}

    /// Extra hooks for the run.
    public var hooks: [any TrainingHook] { debug ? [NonFiniteLocatorHook()] : [] }

    /// `--check`: runs the check on a built run and prints the report.
    public func runCheck(_ run: TrainingRun, buildSeconds: Double) throws {
        let report = try run.trainer.check(modelType: run.settings.model.type, buildSeconds: buildSeconds)
        print(report.text)
    }
}
