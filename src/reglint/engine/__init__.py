"""reglint.engine"""
