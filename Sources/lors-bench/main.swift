print("lors-bench")
