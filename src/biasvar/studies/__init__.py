"""Companion studies, one module per study, each run by its own stage. A study's
stage depends on this file, ``common.py`` and its own module only, so editing one
study reruns only that study."""
