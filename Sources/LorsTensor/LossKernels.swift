/// Loss kernels (filled in by the op family that needs them).
public protocol LossKernels {}

extension CPUBackend: LossKernels {}
