import LorsCLI
import LorsTensor

BLASRuntime.ensureOptimizedKernels()
WorkerCommand.mainExitingOnError()
