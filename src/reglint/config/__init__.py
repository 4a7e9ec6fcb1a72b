"""reglint.config"""
