// LorsTraining module
