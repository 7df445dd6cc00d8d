"""Shared by every stage: errors, atomic file I/O, seeded generators, file schemas, params."""
