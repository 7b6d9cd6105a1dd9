"""Shared test configuration.

The tests mirror the package (``tests/store`` tests ``xebench.store``); this
folder is on ``sys.path`` so helpers such as :mod:`html_checks` import from
any of them.
"""
