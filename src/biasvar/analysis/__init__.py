"""Analysis: per-example bias/variance decompositions, per-config summaries with
intervals, calibration and the alignment regression (stages ``decompose``, ``regress``)."""
