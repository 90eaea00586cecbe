"""Group quality: the Great Expectations gates as blocking asset checks on the
``warehouse/raw/*`` tables (rules in ``ntsb_assets/lib/quality.py``)."""

from .checks import raw_gates, release_statistics

__all__ = ["raw_gates", "release_statistics"]
