// LorsData module
