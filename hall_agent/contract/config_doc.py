"""The configuration reference, generated from the models (``docs/config-reference.md``).

``python -m hall_agent.contract.config_doc > docs/config-reference.md``; a test keeps it in step.
"""

from __future__ import annotations

import sys
import types
import typing
from typing import Any

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from hall_agent.contract.catalog import Catalog
from hall_agent.contract.config import Config

INTRO = """# Configuration reference

Generated from the models in `hall_agent/contract/config.py`, `catalog.py` and the
devices' `drivers/*_config.py`
(`python -m hall_agent.contract.config_doc > docs/config-reference.md`). Every key not
marked required has the default shown; an unknown key is an error. The agent
reads `/etc/hall-edge/agent.toml`, `--config PATH` or `$HALL_EDGE_CONFIG`; the
catalogue is the file `[hall] catalog` names. See `config/agent.toml` and
`config/services.toml` for examples.
"""


# Meanings of the device keys whose models (drivers/*_config.py) carry no description:
# the reference must have a meaning for every key (test_config.py checks it).
MEANINGS: dict[tuple[str, str], str] = {
    ("BoardConfig", "port"): "serial port of the RS-485 bus (transport serial)",
    ("BoardConfig", "role"): "hall: the hall's board (calls, waiting, satisfaction); "
                             "window: one window's board",
    ("BoardConfig", "window"): "the window a role = \"window\" board belongs to",
    ("EvaluatorConfig", "port"): "serial port of the RS-485 bus; may be shared with "
                                 "boards (the addresses differ)",
    ("EvaluatorConfig", "window"): "the window whose service this evaluator rates",
    ("IdReaderConfig", "port"): "serial port of the ID-card reader",
    ("GpioConfig", "door_relay_active_high"): "the door relay is energised by a high "
                                              "level (false: by a low one)",
}


def _type(ann: Any) -> str:
    """A key's type as a person reads it: ``list[int]``, ``str or None``, not pydantic's
    internals (``Annotated[int, FieldInfo(…)]``)."""
    origin, args = typing.get_origin(ann), typing.get_args(ann)
    if origin is typing.Annotated:
        return _type(args[0])
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type(a) for a in args)
    if origin is typing.Literal:
        return "Literal[" + ", ".join(repr(a) for a in args) + "]"
    if origin is not None and args:
        return f"{getattr(origin, '__name__', str(origin))}[{', '.join(map(_type, args))}]"
    if ann is type(None):
        return "None"
    return ann.__name__ if isinstance(ann, type) else str(ann).replace("typing.", "")


def _section(title: str, model: type[BaseModel]) -> list[str]:
    rows = [f"\n## {title}\n", "| key | type | default | meaning |", "|---|---|---|---|"]
    for name, f in model.model_fields.items():
        if f.exclude:
            continue
        sub = f.annotation
        if isinstance(sub, type) and issubclass(sub, BaseModel):
            continue
        default = "**required**" if f.is_required() else (
            "" if f.default is PydanticUndefined else repr(f.default))
        desc = (f.description or MEANINGS.get((model.__name__, name), "")
                ).replace("|", "\\|").replace("\n", " ")
        bounds = [f"{k} {v}" for m in f.metadata for k, v in (
            ("≥", getattr(m, "ge", None)), ("≤", getattr(m, "le", None)),
            ("pattern", getattr(m, "pattern", None))) if v is not None]
        if bounds:
            desc = (desc + " " if desc else "") + "(" + ", ".join(str(b) for b in bounds) + ")"
        typ = _type(f.annotation).replace("|", "\\|")
        rows.append(f"| `{name}` | {typ} | {default.replace('|', chr(92) + '|')} | {desc} |")
    return rows


def _model_of(ann: Any) -> tuple[type[BaseModel] | None, bool]:
    """(the section's model, whether it is a [[list]])."""
    origin = typing.get_origin(ann)
    if origin is list:
        inner = typing.get_args(ann)[0]
        return (inner, True) if isinstance(inner, type) and issubclass(inner, BaseModel) \
            else (None, False)
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        for a in typing.get_args(ann):
            if isinstance(a, type) and issubclass(a, BaseModel):
                return a, False
    if isinstance(ann, type) and issubclass(ann, BaseModel):
        return ann, False
    return None, False


def reference() -> str:
    out = [INTRO, "\n# agent.toml"]
    for name, f in Config.model_fields.items():
        model, many = _model_of(f.annotation)
        if model is None or f.exclude:
            continue
        absent = " (optional section)" if not f.is_required() and f.default is None else ""
        out += _section((f"[[{name}]]" if many else f"[{name}]") + absent, model)
    out.append("\n# The catalogue (services.toml)")
    for name, f in Catalog.model_fields.items():
        model, _ = _model_of(f.annotation)
        if model is not None:
            out += _section(f"[[{name}]]", model)
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    sys.stdout.write(reference())
