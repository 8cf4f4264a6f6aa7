// LorsCheckpoint module
