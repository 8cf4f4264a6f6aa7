// LorsCLI module
