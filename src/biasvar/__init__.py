"""biasvar: bias and variance of deep-model ensembles, reproducibly.

The library behind the DVC pipeline in ``dvc.yaml``, one subpackage per
concern in pipeline order (a subpackage imports only from those before it):

- ``core``      errors, atomic I/O, seeded generators, file schemas, params base
- ``data``      MNIST-1D with label noise; each draw's training split
- ``ensemble``  stacked models, optimizers, block training, collect into Parquet
- ``analysis``  decompositions, summaries, calibration, alignment regression
- ``studies``   companion studies (use core, data and ensemble only)
- ``report``    figures and the generated report
- ``tools``     validate, overrides, parallel runner (no stage depends on them)
"""

__version__ = "0.1.0"
