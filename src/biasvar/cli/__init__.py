"""Console scripts installed with the package (``biasvar analyze``); no stage depends on them."""
