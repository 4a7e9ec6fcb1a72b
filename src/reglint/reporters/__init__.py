"""reglint.reporters"""
