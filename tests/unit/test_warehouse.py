"""The DuckDB session on a real file: rows appended inside a transaction are DuckDB's own
copy, not references to the caller's Arrow buffers (a release loads in one transaction)."""

import gc

import pyarrow as pa

from ntsb_assets.lib.warehouse import PostgresSession, Warehouse


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
        assert pa.total_allocated_bytes() - before < 1_000_000  # still in the transaction
        assert s.query("SELECT count(*) AS n, max(k) AS k FROM raw.t").to_pylist() == [{"n": 50_000, "k": 49_999}]
    with wh.session(read_only=True) as s:
        assert s.query("SELECT count(*) AS n FROM raw.t").column(0)[0].as_py() == 50_000


def test_postgres_query_reads_in_batches_with_one_schema(pg_url, monkeypatch):
    """A query read in batches (server-side cursor when streamed) gives the rows and types of
    one read: a column NULL in the first batch takes its type from the later ones, one NULL
    throughout its PostgreSQL type; JIT is off in the pipeline's sessions."""
    monkeypatch.setattr(PostgresSession, "COPY_ROWS", 1000)
    sql = (
        "SELECT g AS k, CASE WHEN g > 2500 THEN g * 0.5::float8 END AS half, md5(g::text) AS h, "
        "CAST(NULL AS BIGINT) AS no_int, CAST(NULL AS DATE) AS no_date FROM generate_series(1, 3001) AS g ORDER BY g"
    )
    wh = Warehouse(pg_url)
    with wh.session(read_only=True) as s:
        for stream in (False, True):
            data = s.query(sql, stream=stream)
            assert data.num_rows == 3001 and data.schema.field("half").type == pa.float64()
            assert data.column("half").null_count == 2500 and data.column("k").to_pylist() == list(range(1, 3002))
            assert (data.schema.field("no_int").type, data.schema.field("no_date").type) == (pa.int64(), pa.date32())
        empty = s.query("SELECT 1 AS x, 'a' AS y WHERE false", stream=True)
        assert empty.column_names == ["x", "y"] and empty.schema.types == [pa.int64(), pa.string()]
        assert s.query("SHOW jit").to_pylist() == [{"jit": "off"}]
