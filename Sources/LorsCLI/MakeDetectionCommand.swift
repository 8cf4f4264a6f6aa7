import ArgumentParser
import Foundation
import LorsData
import LorsImage

/// `lors make-detection [--out DIR] [--train N] [--val M] [--size S] [--seed K] [--format png|jpeg]`: a COCO-format
/// object-detection set of real images made from Fashion-MNIST (see `DetectionSynthesis`).
struct MakeDetectionCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "make-detection",
        abstract: "Make a COCO-format detection set from Fashion-MNIST: 1-6 items per noisy canvas, boxes of the visible pixels.",
        discussion: "Writes DIR/train/*.png|jpg, DIR/val/* and DIR/annotations/instances_{train,val}.json (images, "
            + "annotations with bbox [x,y,w,h] of the visible pixels, area = visible pixel count, iscrowd = 1 when "
            + "less than 25% of an item is visible; categories 1-10 = the Fashion-MNIST classes). Train canvases use "
            + "the 60k training images, val canvases the 10k test images. The same seed gives the same files, "
            + "whatever the thread count. Files are written to temporary names and renamed; a split's JSON is "
            + "written after its images.")

    @Option(name: .long, help: ArgumentHelp("Output directory.", valueName: "dir"))
    var out = "data/fmnist_det"

    @Option(name: .long, help: ArgumentHelp("Training canvases.", valueName: "N"))
    var train = 6000

    @Option(name: .long, help: ArgumentHelp("Validation canvases.", valueName: "M"))
    var val = 1000

    @Option(name: .long, help: ArgumentHelp("Canvas side in pixels (at least 32).", valueName: "S"))
    var size = 256

    @Option(name: .long, help: ArgumentHelp("Seed of every random draw.", valueName: "K"))
    var seed: UInt64 = 0

    @Option(name: .long, help: ArgumentHelp("Image file format: png or jpeg.", valueName: "format"))
    var format = "png"

    @Option(name: .long, help: ArgumentHelp("JPEG quality 1-100 (with --format jpeg).", valueName: "Q"))
    var quality = 90

    @Option(name: .customLong("fashion-mnist"), help: ArgumentHelp("Directory of the Fashion-MNIST IDX files.", valueName: "dir"))
    var fashionMNIST = "/usr/share/datasets/fashion-mnist"

    @OptionGroup var threadOptions: ThreadOptions

    func validate() throws {
        guard train >= 0, val >= 0, train + val > 0 else {
            throw ValidationError("--train and --val must be ≥ 0 and not both 0, got \(train) and \(val)")
        }
        guard size >= 32 else { throw ValidationError("--size must be at least 32, got \(size)") }
        guard imageFormat != nil else { throw ValidationError("--format must be png or jpeg, got '\(format)'") }
        guard (1...100).contains(quality) else { throw ValidationError("--quality must be in 1...100, got \(quality)") }
    }

    private var imageFormat: ImageFormat? {
        switch format.lowercased() {
        case "png": return .png
        case "jpeg", "jpg": return .jpeg
        default: return nil
        }
    }

    func run() throws {
        threadOptions.apply()
        var options = DetectionSynthesis.Options(outputDirectory: out)
        options.trainImages = train
        options.valImages = val
        options.size = size
        options.seed = seed
        options.format = imageFormat ?? .png
        options.jpegQuality = quality
        options.fashionMNISTRoot = fashionMNIST
        let summaries = try DetectionSynthesis.generate(options)
        print(MakeDetectionCommand.summary(summaries))
    }

    /// The table printed at the end: per split, images, annotations by COCO area range, crowd items, seconds.
    static func summary(_ summaries: [DetectionSynthesis.SplitSummary]) -> String {
        var lines = ["split   images  annotations   small  medium   large   crowd  hidden  seconds"]
        for s in summaries {
            let cells: [(String, Int)] = [(s.split, -5), (String(s.images), 7), (String(s.annotations), 12),
                                          (String(s.small), 7), (String(s.medium), 7), (String(s.large), 7),
                                          (String(s.crowd), 7), (String(s.hiddenItems), 7),
                                          (String(format: "%.1f", s.seconds), 8)]
            lines.append(cells.map { text, width in
                let pad = String(repeating: " ", count: max(0, abs(width) - text.count))
                return width < 0 ? text + pad : pad + text
            }.joined(separator: " "))
        }
        lines.append("small < 32², medium 32²–96², large > 96² (area = visible pixels); crowd: < 25% visible; "
                     + "hidden: items fully covered (no annotation)")
        lines += summaries.map { "\($0.split): \($0.annotationFile)" }
        return lines.joined(separator: "\n")
    }
}
