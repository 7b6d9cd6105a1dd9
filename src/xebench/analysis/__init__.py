"""Pure decisions over statistics: paired and unpaired comparisons, gates, drift verdicts.

Nothing here reads files or the store; callers hand in statistics.

- :mod:`.compare`: paired and unpaired comparisons, the pass / fail gate;
- :mod:`.drift`: one feature's reference vs current histograms judged, features ranked.
"""
