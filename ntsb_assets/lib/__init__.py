"""Plain-Python libraries (no Dagster imports): NTSB catalog, value parsing, release
sources (CSV exports and MDB files through mdbtools), the lake, the warehouse and change
data capture. Dagster assets in the sibling packages stay thin wrappers around these."""

import os as _os

import pyarrow as _pa

# Arrow's default allocator here (mimalloc) keeps the pages of freed buffers: loading a
# release, which reads one table after another, peaked 0.16 GB higher (1.19 against 1.03 GB
# for 100,000 generated events) than with the C library's allocator, which gives them back.
# ARROW_DEFAULT_MEMORY_POOL still chooses, when set.
if "ARROW_DEFAULT_MEMORY_POOL" not in _os.environ:
    _pa.set_memory_pool(_pa.system_memory_pool())
