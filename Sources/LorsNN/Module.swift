// LorsNN module
