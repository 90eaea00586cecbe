"""ntsb build gives the memory a run freed back to the OS before the next run starts."""

import pytest

from ntsb_assets.lib.memory import release_memory


def _rss_mb() -> float:
    with open("/proc/self/status", encoding="ascii") as fh:
        return next(int(line.split()[1]) for line in fh if line.startswith("VmRSS")) / 1024


def test_freed_heap_goes_back_to_the_os():
    blocks = [bytes(1024) + bytes([i % 256]) for i in range(300_000)]  # ~300 MB from malloc (not pymalloc)
    kept = blocks[::64]  # one block in 64 stays: the heap cannot shrink from its top
    del blocks
    before = _rss_mb()
    if not release_memory():
        pytest.skip("not glibc: no malloc_trim")
    assert _rss_mb() < before - 100, "the freed blocks' pages are still resident"
    assert len(kept) == 4688
