// LorsDistributed module
