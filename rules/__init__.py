"""reglint's rules: one module per rule, one ``Rule`` subclass per module.

Installed as ``reglint.rules``; ``reglint.engine.rule.all_rules`` finds them.
"""
