print("lors")
