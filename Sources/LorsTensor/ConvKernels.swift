/// Conv kernels (filled in by the op family that needs them).
public protocol ConvKernels {}

extension CPUBackend: ConvKernels {}
