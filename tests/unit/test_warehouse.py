"""The DuckDB session on a real file: rows appended inside a transaction are DuckDB's own
copy, not references to the caller's Arrow buffers (a release loads in one transaction)."""

import gc

import pyarrow as pa

from ntsb_assets.lib.warehouse import Warehouse


def test_rows_inserted_in_an_open_transaction_let_go_of_their_arrow_buffers(tmp_path):
    wh = Warehouse(f"duckdb:///{tmp_path}/w.duckdb")
    with wh.session() as s:
        s.ensure_schema()
        s.execute("CREATE TABLE raw.t (k INTEGER, a VARCHAR)")
        before = pa.total_allocated_bytes()
        data = pa.table({"k": list(range(50_000)), "a": [f"row {i} " + "x" * 100 for i in range(50_000)]})
        assert pa.total_allocated_bytes() - before > 5_000_000
        s.insert_arrow("t", data)
        del data
        gc.collect()
        assert pa.total_allocated_bytes() - before < 1_000_000   # still in the transaction
        assert s.query("SELECT count(*) AS n, max(k) AS k FROM raw.t").to_pylist() == [{"n": 50_000, "k": 49_999}]
    with wh.session(read_only=True) as s:
        assert s.query("SELECT count(*) AS n FROM raw.t").column(0)[0].as_py() == 50_000
