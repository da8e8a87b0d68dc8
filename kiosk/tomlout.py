"""Write the small subset of TOML our configs use (the standard library only reads TOML)."""
from __future__ import annotations


def _value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, list):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{k} = {_value(x)}" for k, x in v.items()) + " }"
    raise TypeError(f"cannot write {type(v).__name__} as TOML")


def dumps(data: dict) -> str:
    """Sections of scalars, lists, inline tables and arrays of tables."""
    lines = []
    for section, values in data.items():
        lines.append(f"[{section}]")
        tables = []
        for k, v in values.items():
            if isinstance(v, list) and v and isinstance(v[0], dict):
                tables.append((k, v))
            else:
                lines.append(f"{k} = {_value(v)}")
        lines.append("")
        for k, entries in tables:
            for e in entries:
                lines.append(f"[[{section}.{k}]]")
                lines += [f"{ek} = {_value(ev)}" for ek, ev in e.items()]
                lines.append("")
    return "\n".join(lines)
