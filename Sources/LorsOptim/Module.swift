// LorsOptim module
