import XCTest
import LorsTensor
import LorsNN
import LorsModels

/// The benchmark's FLOP count (`ViTConfiguration.trainingMatrixFLOPs`) equals the matrix-product work the engine
/// actually performs in one training step, counted at the sgemm calls.
final class ViTFLOPTests: XCTestCase {
    func testTrainingStepFLOPsEqualTheProductsPerformed() {
        var c = ViTConfiguration()
        c.imageSize = 16
        c.patchSize = 4
        c.embedDim = 48
        c.depth = 3
        c.numHeads = 2
        c.numClasses = 7
        for (name, depth) in [("3 blocks", 3), ("1 block", 1)] {
            c.depth = depth
            let model = VisionTransformer(c)
            model.initializeParameters(seed: 3)
            let batch = 5
            let images = Tensor(RandomKey(seed: 4, purpose: "flops.images").uniforms(batch * 3 * 16 * 16, low: -1, high: 1),
                                shape: [batch, 3, 16, 16])
            let targets: [Int32] = [1, 5, 2, 0, 6]
            let counted = MatrixProductCounter.count {
                let loss = Tensor.crossEntropy(model(images, ForwardContext(training: true, seed: 0, step: 1)), targets: targets,
                                               reduction: .mean)
                loss.backward()
            }
            XCTAssertGreaterThan(counted, 0, name)
            XCTAssertEqual(c.trainingMatrixFLOPs(batch: batch), counted, "\(name): formula vs the engine's sgemm calls")
        }
    }
}
