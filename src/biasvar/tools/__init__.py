"""Command-line tools that no stage depends on: params validation, named
configurations (overrides) and the parallel block runner."""
