/// Sampling kernels (filled in by the op family that needs them).
public protocol SamplingKernels {}

extension CPUBackend: SamplingKernels {}
