// LorsConfig module
