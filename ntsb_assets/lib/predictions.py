"""The champion's batch predictions: a table of one row per event, and storing it in the
warehouse (``ml.batch_predictions``) writing only the rows that changed."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd
import pyarrow as pa

from . import tracking as T
from . import typemap
from .model import SeverityModel

PREDICTIONS_TABLE = ("ml", "batch_predictions")


def prediction_table(model: SeverityModel, version: str, df: pd.DataFrame) -> pa.Table:
    """The model's predictions for the feature rows ``df``, stamped now."""
    pred = model.predict(df).reset_index(drop=True)
    pred.insert(0, "ev_id", df["ev_id"].reset_index(drop=True))
    pred["model_name"] = T.MODEL_NAME
    pred["model_version"] = version
    pred["predicted_at"] = pd.Timestamp(datetime.now(UTC).replace(tzinfo=None, microsecond=0))
    return pa.Table.from_pandas(pred, preserve_index=False)


def store_predictions(s, table: pa.Table) -> int:
    """Make ``ml.batch_predictions`` hold ``table`` (session ``s``: one transaction), writing
    only the rows that differ from the stored ones in anything but ``predicted_at``: the
    others keep their row and stamp. The table is replaced whole when its columns differ.
    Returns the rows written."""
    schema, name = PREDICTIONS_TABLE
    types = {f.name: typemap.of_arrow(f.type) for f in table.schema}
    s.ensure_schema(schema)
    if s.columns(name, schema) != types:
        s.execute(f'DROP TABLE IF EXISTS "{schema}"."{name}"')
        s.ensure_table(name, types, schema=schema, key=("ev_id",))
        s.insert_arrow(name, table, schema=schema)
        return table.num_rows
    new, cols = f"_{name}_new", ", ".join(f'"{c}"' for c in types)
    same = " AND ".join(
        ["o.ev_id = n.ev_id"]
        + [f'o."{c}" IS NOT DISTINCT FROM n."{c}"' for c in types if c not in ("ev_id", "predicted_at")]
    )
    s.execute(f'DROP TABLE IF EXISTS "{schema}"."{new}"')
    s.ensure_table(new, types, schema=schema)
    s.insert_arrow(new, table, schema=schema)
    # a stored row without an equal new one goes (changed or gone); a new row without an equal stored one comes
    s.execute(f'DELETE FROM "{schema}"."{name}" o WHERE NOT EXISTS (SELECT 1 FROM "{schema}"."{new}" n WHERE {same})')
    written = (
        s.query(
            f'SELECT count(*) AS n FROM "{schema}"."{new}" n WHERE NOT EXISTS '
            f'(SELECT 1 FROM "{schema}"."{name}" o WHERE o.ev_id = n.ev_id)'
        )
        .column(0)[0]
        .as_py()
    )
    s.execute(
        f'INSERT INTO "{schema}"."{name}" ({cols}) SELECT {cols} FROM "{schema}"."{new}" n '
        f'WHERE NOT EXISTS (SELECT 1 FROM "{schema}"."{name}" o WHERE o.ev_id = n.ev_id)'
    )
    s.execute(f'DROP TABLE "{schema}"."{new}"')
    return written
