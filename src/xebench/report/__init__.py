"""Rendering of finished results: console tables, Markdown and HTML reports.

The renderers take the JSON documents that the producers return (plain
dicts), so every layer may ask for a rendering without a dependency cycle.
"""
