import LorsCLI
import LorsTensor

BLASRuntime.ensureOptimizedKernels()
LorsCommand.main()
