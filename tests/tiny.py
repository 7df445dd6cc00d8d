"""Tiny params of the simplicity-bias study stages for the pipeline tests (seconds, not
minutes): merged into each test project's params.yaml."""

SPECTRAL_CLS = {"num_samples": 200, "paths": 3, "points": 8, "log_every": 5,
                "base": {"arch": "mlp", "activation": "relu", "depth": 1, "width": 8,
                         "label_noise": 0.0, "members": 2, "optimizer": "adam", "lr": 0.01,
                         "steps": 10, "batch_size": 25, "init_scale": 1.0, "data": "mnist1d"},
                "configs": {"mlp-clean": {}, "mlp-noisy": {"label_noise": 0.15}}}
ERANK_DEPTH = {"num_samples": 200, "depths": [1, 2],
               "base": {"activation": "relu", "width": 8, "members": 2, "optimizer": "adam",
                        "lr": 0.01, "steps": 5, "batch_size": 25, "init_scale": 1.0,
                        "data": "mnist1d"},
               "configs": {"relu": {}, "linear": {"activation": "linear"}}}
BIAS_STUDIES = {"spectral_cls": SPECTRAL_CLS, "erank_depth": ERANK_DEPTH}
