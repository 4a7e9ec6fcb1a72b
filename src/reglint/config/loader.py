"""Find and read [tool.reglint] (minimal)."""

from __future__ import annotations

from reglint.config.settings import Settings


def load_settings(paths: list[str], config: str | None = None, isolated: bool = False) -> Settings:
    return Settings()
