"""The type map's derivations agree with what each system gives back."""

import pyarrow as pa
import pytest

from ntsb_assets.lib import typemap


@pytest.mark.parametrize("logical", typemap.LOGICAL)
def test_a_logical_types_python_type_is_what_its_arrow_values_read_as(logical):
    arrow_type = typemap.ARROW[logical]
    text = "2020-01-02" if pa.types.is_temporal(arrow_type) else "1"
    value = pa.array([text]).cast(arrow_type).to_pylist()[0]  # one value of the type, as the lake reads it
    assert type(value) is typemap.PYTHON[logical]
