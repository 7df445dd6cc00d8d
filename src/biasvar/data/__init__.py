"""Data: the providers of examples (``data.name``), datasets with label noise, and each
draw's training split (stages ``generate``, ``split``)."""
