"""Runtime settings: where the store lives. Env prefix ``ADCREATIVE_``. (A model's device is its own config:
``--gen-config {"device": ...}`` for the diffusers generator and ``tune rfft``; the other models run on the CPU.)"""

from __future__ import annotations

from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    # an empty variable is unset (as click treats ``ADCREATIVE_HOME=``), not ``Path("")``: the current folder
    model_config = SettingsConfigDict(env_prefix="ADCREATIVE_", env_ignore_empty=True)

    home: Path = Path(".adcreative")
    # SQLite under ``home`` by default; any SQLAlchemy URL (e.g. postgresql+psycopg://...) otherwise.
    database_url: str | None = None

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.home / 'adcreative.db').resolve()}"


def get_settings(home: str | Path | None = None) -> Settings:
    return Settings(home=Path(home)) if home is not None else Settings()
