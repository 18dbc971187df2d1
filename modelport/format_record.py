"""``FormatRecord``: what an exporter wrote, as the manifest records it. Light: reading a manifest imports no torch."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

__all__ = ["Detail", "FormatRecord"]

Detail = str | int | float | bool | None


class FormatRecord(BaseModel):
    """What an exporter wrote, as recorded in the manifest (paths relative to the folder)."""

    model_config = ConfigDict(extra="forbid")

    format: str
    runtime: str
    files: list[str]  # the first one is the file a runtime opens
    roles: dict[str, str] = {}  # path -> role, for files other than the main "model"/"weights" one
    details: dict[str, Detail] = {}
    notes: list[str] = []
    # Weights formats: name -> sha256 of each tensor of the model that was exported (``tensor_digest``).
    # Under a valid signature, verify proves a weights file's tensors by these without any other artifact.
    tensors: dict[str, str] = {}
