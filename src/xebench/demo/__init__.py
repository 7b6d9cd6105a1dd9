"""The synthetic production stream (:mod:`.stream`) and the tour (:mod:`.tour`)."""
