import XCTest
import LorsTensor
import LorsNN
import LorsModels

/// A ViT training step: the benchmark's FLOP count (`ViTConfiguration.trainingMatrixFLOPs`) equals the matrix-product
/// work the engine actually performs, counted at the sgemm calls; and the step does not depend on the thread count.
final class ViTStepTests: XCTestCase {
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

    /// A whole ViT training step (forward, backward) of a size whose products are cut into row parts gives the same
    /// loss and gradients bit for bit on 1, 2, 3 and 4 threads, plain and LORS.
    func testTrainingStepIndependentOfThreadCount() {
        let saved = Threading.threads
        defer { Threading.setThreads(saved) }
        var c = ViTConfiguration()
        c.imageSize = 28
        c.inChannels = 1
        c.patchSize = 7
        c.embedDim = 96
        c.depth = 3
        c.numHeads = 3
        c.numClasses = 10
        c.dropPathRate = 0.1
        var l = LORSViTConfiguration()
        l.rank = 8
        for (name, model) in [("vanilla", VisionTransformer(c)), ("LORS", VisionTransformer(c, linears: LORSLinearFactory(l)))] {
            model.initializeParameters(seed: 5)
            for (pname, p) in model.namedParameters() where pname.hasSuffix(".B") || pname.hasPrefix("head.") {
                p.assign(Tensor(RandomKey(seed: 9, purpose: pname).uniforms(p.count, low: -0.05, high: 0.05), shape: p.shape))
            }
            let batch = 64
            let images = Tensor(RandomKey(seed: 4, purpose: "threads.images").uniforms(batch * 28 * 28, low: -1, high: 1),
                                shape: [batch, 1, 28, 28])
            let targets = (0..<batch).map { Int32($0 % 10) }
            func step() -> [[UInt32]] {
                for p in model.parameters { p.grad = nil }
                let loss = Tensor.crossEntropy(model(images, ForwardContext(training: true, seed: 1, step: 3)), targets: targets,
                                               reduction: .mean)
                loss.backward()
                return [[loss.item().bitPattern]] + model.parameters.map { $0.grad!.toArray().map(\.bitPattern) }
            }
            Threading.setThreads(1)
            let one = step()
            for t in [2, 3, 4] {
                Threading.setThreads(t)
                XCTAssertTrue(step() == one, "\(name): loss or gradients differ between 1 and \(t) threads")
            }
        }
    }
}
