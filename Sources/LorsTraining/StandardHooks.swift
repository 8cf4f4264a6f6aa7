import Foundation
import Logging
import LorsNative
import LorsOptim
import LorsTensor

/// Sets `trainer.state.learningRate` before every step from the schedule (a pure function of the
/// 0-based global iteration and epoch, so a resumed run continues exactly).
public final class LRScheduleHook: TrainingHook {
    public init() {}
    public func beforeIteration(_ trainer: Trainer) throws {
        trainer.state.learningRate = trainer.schedule.learningRate(iteration: trainer.state.step, epoch: trainer.state.epoch)
    }
}

/// Evaluates the test set every `eval.interval_epochs` epochs and once more at the end of the run
/// (unless the last evaluation already saw the final step).
public final class EvaluationHook: TrainingHook {
    public let intervalEpochs: Int
    public init(intervalEpochs: Int) { self.intervalEpochs = max(1, intervalEpochs) }

    public func afterEpoch(_ trainer: Trainer) throws {
        guard let epoch = trainer.epochJustCompleted, (epoch + 1) % intervalEpochs == 0 else { return }
        try trainer.evaluate()
    }

    public func afterRun(_ trainer: Trainer) throws {
        // A run stopped by a signal exits quickly (the job is about to be killed); the resumed run evaluates.
        guard trainer.interruption == nil else { return }
        if trainer.lastEvaluation?.step != trainer.state.step {
            do { try trainer.evaluate() } catch is EvaluationInterrupted {}
        }
    }
}

/// Progress lines (info) every `train.log_interval` steps, `metrics.jsonl` lines, TensorBoard scalars,
/// eval lines and a summary at the end; a debug record for every step. Logged loss = mean of the global
/// step losses over the interval.
public final class LoggerHook: TrainingHook {
    public let interval: Int
    public let metrics: MetricsWriter?
    public let tensorBoard: TensorBoardWriter?
    private var lossSum = 0.0
    private var steps = 0
    private var samples = 0
    private var intervalStart = Date()
    private var runStart = Date()
    private var runStartStep = 0
    private var trainSeconds = 0.0
    private var evalSeconds = 0.0
    private var lastGradNorm: Double?

    public init(interval: Int, metrics: MetricsWriter?, tensorBoard: TensorBoardWriter?) {
        self.interval = max(1, interval)
        self.metrics = metrics
        self.tensorBoard = tensorBoard
    }

    public func beforeRun(_ trainer: Trainer) throws {
        runStart = Date()
        intervalStart = runStart
        runStartStep = trainer.state.step
        let t = trainer
        t.log.info("model: \(t.model.parameterCount) parameters (\(t.model.trainableParameters.reduce(0) { $0 + $1.count }) trainable)")
        let data = "data: \(t.task.dataDescription); global batch \(t.settings.batchSize) = \(t.communicator.size) rank(s) × "
            + "\(t.settings.accumulationSteps) × \(t.microBatchSize)"
        t.log.info("\(data)")
        let schedule = "schedule: \(t.settings.epochs) epochs × \(t.state.iterationsPerEpoch) steps = \(t.totalSteps) steps; "
            + "running steps \(t.state.step + 1)...\(t.finalStep); \(Threading.threads) thread(s)"
        t.log.info("\(schedule)")
    }

    public func afterIteration(_ trainer: Trainer, _ result: StepResult) throws {
        if result.skipped { return } // warned by the trainer; not part of the logged mean
        lossSum += result.loss
        steps += 1
        samples += result.samples
        trainSeconds += result.seconds
        lastGradNorm = result.gradientNorm
        trainer.log.debug("\(LoggerHook.stepDetail(result))")
        guard result.step % interval == 0 || result.step == trainer.finalStep else { return }
        let elapsed = Date().timeIntervalSince(intervalStart)
        let loss = lossSum / Double(steps)
        let throughput = Double(samples) / max(elapsed, 1e-9)
        let done = trainer.state.step - runStartStep
        let perStep = trainSeconds / Double(max(1, done))
        let eta = perStep * Double(trainer.finalStep - trainer.state.step)
        let epoch = result.epoch + 1
        let iterationInEpoch = result.step - result.epoch * trainer.state.iterationsPerEpoch
        let memory = MemoryReport.current()
        var line = "epoch \(epoch)/\(trainer.settings.epochs) iter \(iterationInEpoch)/\(trainer.state.iterationsPerEpoch) "
            + "step \(result.step) loss \(String(format: "%.4f", loss)) lr \(String(format: "%.3e", result.learningRate)) "
        if let norm = result.gradientNorm { line += "grad_norm \(String(format: "%.3f", norm)) " }
        line += "\(String(format: "%.1f", throughput)) samples/s eta \(formatDuration(eta)) \(memory.text)"
        trainer.log.info("\(line)")
        var record: JSONObject = [
            "type": "train", "step": .int(result.step), "epoch": .int(epoch), "loss": .double(loss),
            "lr": .double(result.learningRate),
        ]
        if let norm = result.gradientNorm { record["grad_norm"] = .double(norm) }
        record["samples_per_second"] = .double(throughput)
        record["rss_mb"] = .double(memory.residentMB)
        record["time"] = .double(Date().timeIntervalSince1970)
        metrics?.write(record)
        var scalars: [(tag: String, value: Double)] = [("train/loss", loss), ("train/lr", result.learningRate),
                                                       ("train/samples_per_second", throughput)]
        if let norm = result.gradientNorm { scalars.append(("train/grad_norm", norm)) }
        tensorBoard?.scalars(scalars, step: result.step)
        lossSum = 0
        steps = 0
        samples = 0
        intervalStart = Date()
    }

    /// The debug record of every step: `step S loss L lr R [grad_norm G] (T s)` (this step alone, no averaging).
    static func stepDetail(_ result: StepResult) -> String {
        var text = "step \(result.step) loss \(String(format: "%.4f", result.loss)) lr \(String(format: "%.3e", result.learningRate))"
        if let norm = result.gradientNorm { text += " grad_norm \(String(format: "%.3f", norm))" }
        return text + " (\(String(format: "%.3f", result.seconds))s)"
    }

    public func afterEvaluation(_ trainer: Trainer, _ result: EvaluationResult) throws {
        evalSeconds += result.seconds
        let m = result.metrics
        trainer.log.info("eval epoch \(result.epoch) step \(result.step): \(m.text) (\(m.samples) images, \(formatDuration(result.seconds)))")
        var record: JSONObject = ["type": "eval", "step": .int(result.step), "epoch": .int(result.epoch)]
        for metric in m.values { record[metric.name] = .double(metric.value) }
        record["images"] = .int(m.samples)
        record["time"] = .double(Date().timeIntervalSince1970)
        metrics?.write(record)
        tensorBoard?.scalars(m.values.map { ("eval/\($0.name)", $0.value) }, step: result.step)
        // Evaluation time is not part of the next interval's throughput.
        intervalStart = intervalStart.addingTimeInterval(result.seconds)
    }

    public func afterRun(_ trainer: Trainer) throws {
        let wall = Date().timeIntervalSince(runStart)
        let done = trainer.state.step - runStartStep
        var summary = "done: \(done) steps (final step \(trainer.state.step)) in \(formatDuration(wall)) "
            + "(train \(formatDuration(trainSeconds)), eval \(formatDuration(evalSeconds))); "
            + "\(String(format: "%.1f", Double(done * trainer.settings.batchSize) / max(trainSeconds, 1e-9))) samples/s"
        if let last = trainer.lastEvaluation { summary += "; final \(last.metrics.text)" }
        if let best = trainer.bestEvaluation {
            let primary = best.metrics.values.first { $0.name == best.metrics.primary }!
            summary += "; best \(primary.text) at epoch \(best.epoch)"
        }
        if let reason = trainer.state.stopReason { summary += " (stopped: \(reason))" }
        summary += "; peak RSS \(String(format: "%.0f", MemoryReport.current().peakResidentMB)) MB"
        trainer.log.info("\(summary)")
    }
}

/// Formats seconds as `1h02m03s`, `2m03s` or `4.5s`.
func formatDuration(_ seconds: Double) -> String {
    guard seconds.isFinite else { return "?" }
    if seconds < 60 { return String(format: "%.1fs", seconds) }
    let s = Int(seconds.rounded())
    if s < 3600 { return String(format: "%dm%02ds", s / 60, s % 60) }
    return String(format: "%dh%02dm%02ds", s / 3600, (s % 3600) / 60, s % 60)
}

/// Process memory (RSS from /proc, peak from getrusage) and the backend's allocation counters.
public struct MemoryReport: Sendable {
    public var residentMB: Double
    public var peakResidentMB: Double
    public var backend: MemoryStatistics

    public static func current() -> MemoryReport {
        var resident = 0.0
        if let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) {
            let fields = text.split(separator: " ")
            if fields.count > 1, let pages = Double(fields[1]) {
                resident = pages * Double(sysconf(Int32(_SC_PAGESIZE))) / 1_048_576
            }
        }
        var usage = rusage()
        getrusage(Int32(RUSAGE_SELF.rawValue), &usage)
        return MemoryReport(residentMB: resident, peakResidentMB: Double(usage.ru_maxrss) / 1024,
                            backend: Backends.current.memoryStatistics)
    }

    /// `rss 512MB (peak 600MB) cpu: in use 100MB cached 20MB peak 150MB`.
    public var text: String {
        let mb = { (bytes: Int) in String(format: "%.0fMB", Double(bytes) / 1_048_576) }
        return "rss \(String(format: "%.0fMB", residentMB)) (peak \(String(format: "%.0fMB", peakResidentMB))) "
            + "\(Backends.current.name): in use \(mb(backend.inUseBytes)) cached \(mb(backend.cachedBytes)) "
            + "peak \(mb(backend.peakInUseBytes))"
    }
}
