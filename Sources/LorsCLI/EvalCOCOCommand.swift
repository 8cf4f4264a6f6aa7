import ArgumentParser
import Foundation
import LorsDetection
import LorsNative

/// `lors eval-coco`: COCO box AP/AR of a detection results file, the numbers pycocotools' COCOeval prints.
struct EvalCOCOCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval-coco",
        abstract: "COCO box AP/AR of detections against a COCO instances file (pycocotools' COCOeval numbers).",
        discussion: "Prints the 12 lines of COCOeval.summarize(); --json prints one JSON object with the keys AP AP50 AP75 APs APm APl "
            + "AR1 AR10 AR100 ARs ARm ARl (fractions, -1 where undefined). With --max-dets 100,300,1000 (mmdetection's "
            + "proposal_nums) the AP lines use 1000 detections and AR@100 AR@300 AR@1000 replace AR1 AR10 AR100. "
            + "Errors (malformed JSON with line:column, a negative box size, an unknown image or category) exit 1.")

    @Option(name: .long, help: ArgumentHelp("COCO instances JSON (images, annotations, categories).", valueName: "file"))
    var gt: String

    @Option(name: .long, help: ArgumentHelp("Detection results JSON: a list of {image_id, category_id, bbox, score}.", valueName: "file"))
    var dt: String

    @Option(name: .customLong("max-dets"), help: ArgumentHelp("Three detection limits per image (mmdetection: 100,300,1000).", valueName: "m1,m2,m3"))
    var maxDets: String = "1,10,100"

    @Flag(name: .long, help: "Print one JSON object instead of the summary lines.")
    var json = false

    /// The parsed `--max-dets`, sorted.
    func maxDetections() throws -> [Int] {
        let parts = maxDets.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
        let values = parts.compactMap { Int($0) }
        guard values.count == parts.count, values.count == 3 else {
            throw ValidationError("--max-dets takes three comma-separated integers, e.g. 1,10,100; got '\(maxDets)'")
        }
        do { return try COCOEvaluator.checkedMaxDetections(values) } catch { throw ValidationError("--max-dets: \(error)") }
    }

    func validate() throws { _ = try maxDetections() }

    /// What `run` prints: the summary lines, or one compact JSON object (keys in summary order, through `JSONValue`).
    func output() throws -> String {
        let truth = try COCOGroundTruth.load(path: gt)
        let detections = try COCODetections.load(path: dt, groundTruth: truth, groundTruthSource: gt)
        let evaluation = try COCOEvaluator.evaluate(groundTruth: truth, detections: detections, maxDetections: try maxDetections())
        let summary = try COCOSummary(evaluation)
        return json ? JSONObject(summary.entries.map { ($0.key, .double($0.value)) }).text() : summary.text
    }

    func run() throws {
        do {
            print(try output())
        } catch let error as COCOError {
            FileHandle.standardError.write(Data("lors: error: \(error)\n".utf8))
            throw ExitCode.failure
        }
    }
}
