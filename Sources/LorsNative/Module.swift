// LorsNative module
