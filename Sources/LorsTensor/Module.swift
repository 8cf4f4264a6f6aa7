// LorsTensor module
