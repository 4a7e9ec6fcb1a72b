"""Model builders and checks for bench/robustness_sweep.py (a script, not a test)."""
