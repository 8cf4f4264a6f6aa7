import Foundation
import LorsTensor
import LorsOptim

/// Inputs shared by the optimizer tests, defined by formulas so the PyTorch reference can
/// rebuild them (see the python snippet in `referenceScript`):
/// p_i = sin(i) (7 values), q_j = 0.5·cos(j) (shape [2, 3]); at step t = 1...5 the gradients are
/// gp_i = cos(2i + t), gq_j = sin(3j − t); the scheduled learning rate of step t is `rates[t − 1]`.
enum Fixtures {
    static let rates: [Double] = [0.01, 0.02, 0.015, 0.005, 0.01]

    static func p() -> Tensor {
        let t = Tensor((0..<7).map { Float(sin(Double($0))) }, shape: [7], requiresGrad: true)
        t.name = "p"
        return t
    }

    static func q() -> Tensor {
        let t = Tensor((0..<6).map { Float(0.5 * cos(Double($0))) }, shape: [2, 3], requiresGrad: true)
        t.name = "q"
        return t
    }

    static func gp(_ step: Int) -> Tensor { Tensor((0..<7).map { Float(cos(Double(2 * $0 + step))) }, shape: [7]) }
    static func gq(_ step: Int) -> Tensor { Tensor((0..<6).map { Float(sin(Double(3 * $0 - step))) }, shape: [2, 3]) }

    /// Runs steps `range` (1-based): sets p.grad = gp(t), q.grad = gq(t) (nil when t is in
    /// `skipQ`), then `optimizer.step(learningRate: rateScale × rates[t − 1])`.
    static func run(_ optimizer: Optimizer, p: Tensor, q: Tensor, steps range: ClosedRange<Int> = 1...5,
                    rateScale: Double = 1, skipQ: Set<Int> = []) {
        for t in range {
            p.grad = gp(t)
            q.grad = skipQ.contains(t) ? nil : gq(t)
            optimizer.step(learningRate: rateScale * rates[t - 1])
        }
    }

    /// The PyTorch 2.13 (CPU, float32) script that produced every `torch` literal in these tests.
    static let referenceScript = """
    import math, torch
    def P(): return torch.tensor([math.sin(i) for i in range(7)], requires_grad=True)
    def Q(): return torch.tensor([0.5*math.cos(j) for j in range(6)]).reshape(2,3).requires_grad_(True)
    def gp(t): return torch.tensor([math.cos(2*i + t) for i in range(7)])
    def gq(t): return torch.tensor([math.sin(3*j - t) for j in range(6)]).reshape(2,3)
    LRS = [0.01, 0.02, 0.015, 0.005, 0.01]
    def run(make, groups_lr, skip_q=()):
        p, q = P(), Q()
        opt = make(p, q)
        for t in range(1, 6):
            for g, lr in zip(opt.param_groups, groups_lr(LRS[t-1])): g['lr'] = lr
            p.grad = gp(t); q.grad = None if t in skip_q else gq(t)
            opt.step()
        return p, q
    """
}
