"""Windows, series, drift and canary / shadow comparisons over the event store."""
