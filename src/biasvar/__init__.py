"""biasvar: bias and variance of deep-model ensembles, reproducibly.

The public API, for any ensemble's outputs (``biasvar.analysis.api``)::

    import biasvar
    table = biasvar.decompose(logits, labels=labels, draw=draw)  # per example
    summary = biasvar.summarize(logits, labels=labels, draw=draw)  # with intervals
    fit = biasvar.fit_alignment(logits, labels=labels, estimator="unbiased")
    terms = biasvar.diversity(logits, labels=labels, draw=draw)

The names load on first use (PEP 562), so ``import biasvar`` stays cheap and the
pipeline's stages, which import their subpackages directly, never run them.

The library behind the DVC pipeline in ``dvc.yaml``, one subpackage per
concern in pipeline order (a subpackage imports only from those before it):

- ``core``      errors, atomic I/O, seeded generators, file schemas, params base
- ``data``      data providers, label noise, each draw's training split
- ``ensemble``  models sized from the data, vectorized training, collect into Parquet
- ``analysis``  decompositions, diversity, summaries, calibration, alignment; the API
- ``studies``   companion studies (use core, data and ensemble only)
- ``report``    figures and the generated report
- ``cli``       console scripts (``biasvar analyze``); no stage depends on them
- ``tools``     validate, overrides, parallel runner (no stage depends on them)
"""

__version__ = "0.1.0"

__all__ = ["decompose", "summarize", "fit_alignment", "diversity", "__version__"]

_API = "biasvar.analysis.api"  # where the public names live (a string: no import here)


def __getattr__(name: str):
    if name in __all__:
        import importlib

        return getattr(importlib.import_module(_API), name)
    raise AttributeError(f"module 'biasvar' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)
