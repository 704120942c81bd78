"""Data sources: one module per source (official formats, hub copies, offline builders, generated tiny
data), each registering itself in ``harness.data.sources.SOURCES``; the types they share are in
``harness.data.types``."""
