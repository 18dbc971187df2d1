"""JSON Schemas of the reports, generated from the typed records.

``python -m modelport.schema schemas/`` rewrites the published copies in the repository;
a test fails when they drift from the records.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

__all__ = ["SCHEMA_FILES", "report_schemas"]

SCHEMA_FILES = {"run": "run-report.schema.json", "verify": "verify-report.schema.json"}


def report_schemas() -> dict[str, dict[str, Any]]:
    from modelport.pipeline.records import SCHEMA_VERSION, Report, VerifyReport

    schemas = {}
    for kind, model in (("run", Report), ("verify", VerifyReport)):
        schema = model.model_json_schema(mode="serialization")
        schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        schema["$id"] = f"https://modelport.dev/schemas/v{SCHEMA_VERSION}/{SCHEMA_FILES[kind]}"
        schemas[kind] = schema
    return schemas


def main(argv: list[str]) -> int:
    folder = Path(argv[0]) if argv else Path("schemas")
    folder.mkdir(parents=True, exist_ok=True)
    for kind, schema in report_schemas().items():
        (folder / SCHEMA_FILES[kind]).write_text(json.dumps(schema, indent=2, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
