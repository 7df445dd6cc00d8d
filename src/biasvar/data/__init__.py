"""Data: MNIST-1D generation with label noise, and each draw's training split
(stages ``generate``, ``split``)."""
