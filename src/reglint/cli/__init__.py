"""reglint.cli"""
