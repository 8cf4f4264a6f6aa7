/// Norm kernels (filled in by the op family that needs them).
public protocol NormKernels {}

extension CPUBackend: NormKernels {}
