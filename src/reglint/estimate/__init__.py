"""reglint.estimate"""
