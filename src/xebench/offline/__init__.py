"""The offline benchmark and drift over files and in-memory tables.

These read through :mod:`xebench.io`, compute through :mod:`xebench.stats`
and decide through :mod:`xebench.analysis`.
"""
