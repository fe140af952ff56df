"""Masked forms of an ID number and a name: what may be shown, logged or kept.

One definition for the ID-card codec's ``repr`` (drivers/idcard.py) and for the
agent's personal data (hall_agent/core/personal.py, DESIGN.md "Personal data").
"""

from __future__ import annotations


def normalise_id(number: str) -> str:
    return number.strip().upper()


def mask_id(number: str) -> str:
    """``350102199001011238`` → ``3501**********1238``; shorter numbers keep less."""
    n = normalise_id(number)
    if len(n) <= 8:
        return "*" * len(n)
    return n[:4] + "*" * (len(n) - 8) + n[-4:]


def mask_name(name: str) -> str:
    """``张三`` → ``张*``, ``测试乙丙`` → ``测*``: the first character and one star, so the
    mask does not tell the name's length either; a Latin name keeps its first letter."""
    n = name.strip()
    return n[0] + "*" if n else ""
