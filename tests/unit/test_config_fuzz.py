"""Property tests of the configuration: whatever a file holds, loading it either gives a
valid config or one ConfigError naming the file — never another exception."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.errors import ConfigError
from hall_agent.contract.config import load_catalog, load_config

KEYS = ["hall", "agent", "printer", "mqtt", "boards", "evaluators", "id", "name", "api",
        "port", "baudrate", "address", "role", "window", "services", "windows", "hours",
        "transport", "data_dir", "catalog", "daily_limit", "kiosk", "voice", "bus",
        "timezone", "status_url", "scanner", "gpio", "id_reader", "requires_id"]
SCALARS = (st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.text(max_size=12)
           | st.sampled_from(["/dev/ttyUSB0", "127.0.0.1:8765", "24h", "hall", "A",
                              "08:30-12:00", "serial", "window"]))
VALUES = st.recursive(SCALARS, lambda kids: st.lists(kids, max_size=3) | st.dictionaries(
    st.sampled_from(KEYS), kids, max_size=5), max_leaves=25)


def toml_value(v: Any) -> str | None:
    if v is None:
        return None
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    if isinstance(v, list):
        items = [toml_value(x) for x in v]
        return "[" + ", ".join(i for i in items if i is not None) + "]"
    if isinstance(v, dict):
        parts = [f"{k} = {tv}" for k, x in v.items() if (tv := toml_value(x)) is not None]
        return "{" + ", ".join(parts) + "}"
    return None


@settings(max_examples=300, deadline=None, database=None)
@given(doc=st.dictionaries(st.sampled_from(KEYS), VALUES, max_size=6))
def test_any_document_loads_or_fails_with_one_config_error(tmp_path_factory: Any,
                                                           doc: dict[str, Any]) -> None:
    path = Path(tmp_path_factory.mktemp("cfg")) / "agent.toml"
    text = "\n".join(f"{k} = {tv}" for k, v in doc.items() if (tv := toml_value(v)))
    path.write_text(text, encoding="utf-8")
    for load in (load_config, load_catalog):
        try:
            load(path)
        except ConfigError as e:
            assert str(path) in str(e)


@settings(max_examples=200, deadline=None, database=None)
@given(raw=st.binary(max_size=300))
def test_any_bytes_load_or_fail_with_one_config_error(tmp_path_factory: Any,
                                                      raw: bytes) -> None:
    path = Path(tmp_path_factory.mktemp("cfg")) / "agent.toml"
    path.write_bytes(raw)
    try:
        load_config(path)
    except ConfigError as e:
        assert str(path) in str(e)


def test_the_generator_produces_valid_toml() -> None:
    text = f"a = {toml_value({'x': [1, 'y'], 'z': True})}"
    assert tomllib.loads(text) == {"a": {"x": [1, "y"], "z": True}}
