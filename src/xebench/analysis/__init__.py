"""Pure decisions over statistics: paired and unpaired comparisons, gates.

Nothing here reads files or the store; callers hand in statistics.
"""
