"""The settings every config model shares, apart from ``models`` so that the settings of one
part (``config.faults``, ``config.venues``) can use them without an import cycle."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class FrozenModel(BaseModel):
    """Frozen, unknown keys refused, a field's docstring is its description, no NaN or inf.
    Schemas build on first use: a restarted actor unpickles its config and never validates it,
    so building every model's schema at import would only slow each restart (about 0.1 s)."""

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        use_attribute_docstrings=True,
        allow_inf_nan=False,
        defer_build=True,
    )
