# Your repl's entry point. Edit it, then run `python3 main.py` (or press Run).
print("Hello from Devex (python)")
