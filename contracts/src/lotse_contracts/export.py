"""Writing the published artefacts: one JSON Schema per event and asyncapi.yaml."""

from __future__ import annotations

import json
from pathlib import Path

from lotse_contracts.asyncapi import asyncapi_yaml
from lotse_contracts.schemas import event_schemas

ASYNCAPI_FILE = "asyncapi.yaml"


def export(directory: Path) -> list[Path]:
    """Write `<type>.json` for every event type and `asyncapi.yaml` into `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for event_type, schema in event_schemas().items():
        path = directory / f"{event_type}.json"
        path.write_text(json.dumps(schema, indent=2, ensure_ascii=False) + "\n")
        written.append(path)
    asyncapi_path = directory / ASYNCAPI_FILE
    asyncapi_path.write_text(asyncapi_yaml())
    written.append(asyncapi_path)
    return written
