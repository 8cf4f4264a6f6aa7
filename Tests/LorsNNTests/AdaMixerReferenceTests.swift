import XCTest
import LorsModels
import LorsNN
import LorsTensor
import LorsTestSupport

/// The reduced vanilla and LORS decoders against PyTorch (float64 reference of the official code, stored as float32):
/// forward output and the gradient of `sum(out ⊙ W)` for every parameter and for the inputs.
///
/// Tolerances: the Swift pass runs in float32 through two stages of LayerNorm, softmax, grid sampling and small matmuls;
/// relative rounding is ~1e-7 per op and LayerNorm divides by standard deviations of order 0.1-1, so forward errors of
/// ~1e-5 are expected. Gradients pass back through the same ops plus the IoF-biased softmax and accumulate over every
/// query and point, so they get atol 2e-4 + rtol 2e-3 on values of order 0.1-10. A layout bug (a transposed M, a swapped
/// group index, x/y exchanged) produces O(1) errors, far outside these bounds.
final class AdaMixerReferenceTests: XCTestCase {
    func check(model: String, lors: Bool) throws {
        let fixture = try AdaMixerFixture.load()
        let decoder = AdaMixerDecoder(AdaMixerTests.reduced(lors: lors))
        try fixture.loadParameters(into: decoder, model: model)
        let inputs = try fixture.inputs()
        Tape.shared.reset()
        let out = AdaMixerFixture.flatten(decoder(inputs.features, xyzr: inputs.xyzr, content: inputs.content))
        assertClose(out, try fixture.tensor(model + "/out"), rtol: 1e-4, atol: 1e-4, "\(model) forward")
        out.backward(seed: try fixture.tensor(model + "/weights"))
        for (name, p) in decoder.namedParameters() {
            let expected = try fixture.tensor(model + "/grad/" + name)
            let actual = p.grad ?? Tensor.zeros(p.shape)
            assertClose(actual, expected, rtol: 2e-3, atol: 2e-4, "\(model) gradient of \(name)")
        }
        assertClose(inputs.content.grad!, try fixture.tensor(model + "/grad_input/content"), rtol: 2e-3, atol: 2e-4, "\(model) content grad")
        for (l, f) in inputs.features.enumerated() {
            assertClose(f.grad!, try fixture.tensor(model + "/grad_input/features.\(l)"), rtol: 2e-3, atol: 2e-4, "\(model) features.\(l) grad")
        }
        Tape.shared.reset()
    }

    func testVanillaDecoderMatchesPyTorch() throws { try check(model: "vanilla", lors: false) }

    func testLORSDecoderMatchesPyTorch() throws { try check(model: "lors", lors: true) }
}
