"""biasvar: bias and variance of deep-model ensembles, reproducibly.

The library behind the DVC pipeline in ``dvc.yaml``. Modules:

- ``params``  typed, validated configs (one frozen dataclass per params.yaml section)
- ``rng``     explicit seed derivation from (base seed, purpose, identity)
- ``data``    MNIST-1D generation with label noise
- ``splits``  each draw's training indices (bootstrap / disjoint / full)
- ``models``  stacked (vectorized) MLP / CNN / logistic members and plain references
- ``train``   trains a block of members in one process
- ``schema``  the one module defining every file format (Parquet logits, ...)
- ``logits``  collect block outputs into the Parquet dataset; dense reads
"""

__version__ = "0.1.0"
