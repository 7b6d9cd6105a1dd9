"""Event validation (:mod:`.events`) and file import into the store (:mod:`.files`)."""
