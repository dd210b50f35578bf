"""ETP's framework-free kernel: settings, errors, database access, domain rules.

Nothing in this package imports quart, ray or arq (a test asserts it).
"""
