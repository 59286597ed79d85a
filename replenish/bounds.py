"""One check for the settings dataclasses the pure layers own (MasterDefaults, ValidationRules, LSTMConfig)."""

from __future__ import annotations

from collections.abc import Mapping


def require_in_range(config: object, holds: Mapping[str, bool], what: str, ranges: str) -> None:
    """Raise ValueError naming every field of `config` whose bound in `holds` is False, and the ranges."""
    broken = [f"{name} = {getattr(config, name)}" for name, kept in holds.items() if not kept]
    if broken:
        raise ValueError(f"{what} out of range: {', '.join(broken)} ({ranges})")
