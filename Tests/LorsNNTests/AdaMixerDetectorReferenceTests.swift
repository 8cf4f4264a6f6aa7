import XCTest
import LorsModels
import LorsNN
import LorsTensor
import LorsTestSupport

/// The whole detector — ResNet-18 (width 4, GroupNorm) → channel mapper → query generator → 6 decoder stages — against
/// PyTorch (`scripts/make_detector_fixtures.py`), vanilla and LORS, on two images of different valid sizes padded into
/// one 64 × 96 batch: every stage's class logits and boxes.
///
/// Tolerances: float32 through the backbone (~1e-6 relative), then six stages of LayerNorm, IoF-biased attention,
/// bilinear sampling and mixing, with the boxes of each stage feeding the next one's sampling positions; the observed
/// errors are ~1e-6 on logits of order 1 and ~1e-5 on boxes of order 10–100 (x, y in pixels). atol 5e-5 + rtol 1e-4
/// leaves a 5-10x margin; scaling the initial boxes by the padded size instead of each image's valid size gives errors of
/// 0.2 (logits) and 10 (boxes) in the first stage, and a transposed level or swapped x/y errors of that order.
final class AdaMixerDetectorReferenceTests: XCTestCase {
    static func configuration(_ fixture: ReferenceFixture, lors: Bool) -> AdaMixerConfiguration {
        var c = AdaMixerConfiguration()
        c.backboneDepth = 18
        c.backboneWidth = fixture.int("width")
        c.backboneNorm = .groupNorm(groups: fixture.int("backbone_groups"))
        c.frozenStages = -1
        c.neckGroups = fixture.int("neck_groups")
        c.numQueries = fixture.int("queries")
        c.numStages = fixture.int("stages")
        c.contentDim = fixture.int("content_dim")
        c.feedforwardChannels = fixture.int("ffn")
        c.numHeads = fixture.int("heads")
        c.outPoints = fixture.int("out_points")
        c.numClasses = fixture.int("classes")
        let model = lors ? "lors" : "vanilla"
        c.samplingGroups = fixture.int(model + "_groups")
        c.inPoints = fixture.int(model + "_in_points")
        if lors {
            var l = AdaMixerLORSConfiguration()
            l.lorsaRank = fixture.int("lorsa_rank")
            l.lorsaGroups = fixture.ints("lorsa_groups")
            l.lorstRank = fixture.int("lorst_rank")
            l.lorstGroups = fixture.ints("lorst_groups")
            c.lors = l
        }
        return c
    }

    func check(lors: Bool) throws {
        let fixture = try ReferenceFixture("detector_reference")
        let model = lors ? "lors" : "vanilla"
        let detector = AdaMixerDetector(Self.configuration(fixture, lors: lors))
        detector.initializeParameters(seed: 9)
        let names = detector.namedParameters().map(\.0)
        let fixtureNames = fixture.index.keys.compactMap { key -> String? in
            if key.hasPrefix("param/") { return String(key.dropFirst("param/".count)) }
            if key.hasPrefix(model + "/param/") { return String(key.dropFirst(model.count + "/param/".count)) }
            return nil
        }
        XCTAssertEqual(Set(names), Set(fixtureNames), "parameter names of the Swift and PyTorch \(model) detectors")
        for (name, p) in detector.namedParameters() {
            let key = name.hasPrefix("decoder.") ? "\(model)/param/\(name)" : "param/\(name)"
            let t = fixture.tensor(key)
            XCTAssertEqual(t.shape, p.shape, name)
            p.assign(t)
        }
        XCTAssertTrue(detector.namedBuffers().isEmpty, "a GroupNorm backbone has no running statistics")

        let valid = fixture.ints("valid")  // (height, width) per image
        let sizes = stride(from: 0, to: valid.count, by: 2).map { (height: valid[$0], width: valid[$0 + 1]) }
        let images = fixture.tensor("images")
        XCTAssertEqual(images.shape, [2, 3] + fixture.ints("padded"))
        XCTAssertNotEqual(sizes[0].height, sizes[1].height)
        let outputs = withoutGradients { detector(images, imageSizes: sizes) }
        XCTAssertEqual(outputs.count, 6)
        for (s, out) in outputs.enumerated() {
            assertClose(out.classLogits, fixture.tensor("\(model)/stage\(s)/logits"), rtol: 1e-4, atol: 5e-5, "\(model) stage \(s) logits")
            assertClose(out.boxes, fixture.tensor("\(model)/stage\(s)/boxes"), rtol: 1e-4, atol: 5e-5, "\(model) stage \(s) boxes")
        }
    }

    func testVanillaDetectorMatchesPyTorch() throws { try check(lors: false) }

    func testLORSDetectorMatchesPyTorch() throws { try check(lors: true) }
}
