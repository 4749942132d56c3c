import Mirror
print("todo")
