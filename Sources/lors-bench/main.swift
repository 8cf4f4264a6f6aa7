import Foundation
import LorsTensor
import LorsNN
import LorsModels

Threading.configureFromEnvironment()
var c = ViTConfiguration.tiny
let model = VisionTransformer(c)
model.initializeParameters(seed: 0)
let batch = 64
let x = Tensor(RandomKey(seed: 1, purpose: "x").uniforms(batch * 3 * 32 * 32), shape: [batch, 3, 32, 32])
let onehot = Tensor((0..<batch * 100).map { $0 % 100 == ($0 / 100) % 100 ? Float(1) : 0 }, shape: [batch, 100])
for i in 0..<6 {
    let t0 = Date()
    let logits = model(x, ForwardContext(training: true))
    let t1 = Date()
    let loss = (logits.logSoftmax() * onehot).sum() * (-1 / Float(batch))
    loss.backward()
    let t2 = Date()
    print(i, "fwd", t1.timeIntervalSince(t0), "bwd", t2.timeIntervalSince(t1), loss.item())
}
