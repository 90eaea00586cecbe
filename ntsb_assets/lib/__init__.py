"""Plain-Python libraries (no Dagster imports): NTSB catalog, value parsing, release
sources (CSV exports and MDB files through mdbtools), the lake, the warehouse and change
data capture. Dagster assets in the sibling packages stay thin wrappers around these."""
