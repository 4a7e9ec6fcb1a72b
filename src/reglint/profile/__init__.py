"""reglint.profile"""
