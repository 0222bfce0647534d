"""Request validation against the ``aiplatform`` v1 discovery document.

The document is the one google-api-python-client ships (``discovery_cache/documents``), i.e. the
same one the adapter's client is built from. A request must match a method's ``flatPath`` and
``httpMethod``, use only that method's (or the API's standard) query parameters, and carry a
body that fits the method's request schema at every depth: unknown fields, output-only fields,
wrong JSON types and values outside an enum are all rejected, so a misspelt field fails a test.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from importlib import resources
from typing import Any


class Invalid(Exception):
    """A request the real API would refuse; ``status`` is the HTTP status to answer with."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class Method:
    id: str  # "aiplatform.projects.locations.models.upload"
    http_method: str
    pattern: re.Pattern[str]
    parameters: frozenset[str]
    request: str | None  # schema name of the body, None when the method takes none


def load_document(api: str = "aiplatform", version: str = "v1") -> dict[str, Any]:
    """The static discovery document bundled with google-api-python-client."""
    documents = resources.files("googleapiclient").joinpath("discovery_cache", "documents")
    return json.loads(documents.joinpath(f"{api}.{version}.json").read_text())


def _methods(resource: dict[str, Any]) -> list[dict[str, Any]]:
    found = list(resource.get("methods", {}).values())
    for child in resource.get("resources", {}).values():
        found.extend(_methods(child))
    return found


def _path_regex(flat_path: str) -> re.Pattern[str]:
    parts = re.split(r"(\{[^}]+\})", flat_path)
    body = "".join("[^/:]+" if p.startswith("{") else re.escape(p) for p in parts)
    return re.compile(f"^{body}$")


class Discovery:
    """Matches and validates requests against one discovery document."""

    def __init__(self, document: dict[str, Any]):
        self.schemas: dict[str, Any] = document["schemas"]
        self.standard_parameters = frozenset(document.get("parameters", {}))
        self.methods = [
            Method(
                id=m["id"],
                http_method=m["httpMethod"],
                pattern=_path_regex(m.get("flatPath", m["path"])),
                parameters=frozenset(m.get("parameters", {})),
                request=m.get("request", {}).get("$ref"),
            )
            for m in _methods(document)
        ]

    def match(self, http_method: str, path: str, query: dict[str, list[str]]) -> Method:
        """The method for this request. Raises Invalid (404 path, 405 verb, 400 parameter)."""
        path = path.lstrip("/")
        by_path = [m for m in self.methods if m.pattern.match(path)]
        if not by_path:
            raise Invalid(404, f"no aiplatform v1 method has the path /{path}")
        chosen = [m for m in by_path if m.http_method == http_method]
        if not chosen:
            verbs = sorted({m.http_method for m in by_path})
            raise Invalid(405, f"/{path} takes {', '.join(verbs)}, not {http_method}")
        method = chosen[0]
        unknown = set(query) - method.parameters - self.standard_parameters
        if unknown:
            raise Invalid(400, f"{method.id}: unknown query parameters {sorted(unknown)}")
        return method

    def validate_body(self, method: Method, body: Any) -> None:
        """Raise Invalid(400) unless ``body`` fits the method's request schema."""
        if method.request is None:
            if body not in (None, {}):
                raise Invalid(400, f"{method.id} takes no request body")
            return
        if body is None:
            raise Invalid(400, f"{method.id} needs a {method.request} body")
        self._check(body, {"$ref": method.request}, method.request)

    def _check(self, value: Any, schema: dict[str, Any], where: str) -> None:
        if "$ref" in schema:
            schema = self.schemas[schema["$ref"]]
        kind = schema.get("type")
        if kind == "object":
            self._check_object(value, schema, where)
        elif kind == "array":
            if not isinstance(value, list):
                raise Invalid(400, f"{where}: expected a list, got {type(value).__name__}")
            for i, item in enumerate(value):
                self._check(item, schema.get("items", {}), f"{where}[{i}]")
        elif kind == "string":
            self._check_string(value, schema, where)
        elif kind == "integer":
            ok = (isinstance(value, int) and not isinstance(value, bool)) or (
                isinstance(value, str) and re.fullmatch(r"-?\d+", value)
            )
            if not ok:
                raise Invalid(400, f"{where}: expected an integer, got {value!r}")
        elif kind == "number":
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise Invalid(400, f"{where}: expected a number, got {value!r}")
        elif kind == "boolean" and not isinstance(value, bool):
            raise Invalid(400, f"{where}: expected true or false, got {value!r}")

    def _check_object(self, value: Any, schema: dict[str, Any], where: str) -> None:
        if not isinstance(value, dict):
            raise Invalid(400, f"{where}: expected an object, got {type(value).__name__}")
        properties = schema.get("properties")
        if properties is not None:
            for key, item in value.items():
                if key not in properties:
                    raise Invalid(
                        400,
                        f'Invalid JSON payload received. Unknown name "{key}" '
                        f"at '{where}': Cannot find field.",
                    )
                if properties[key].get("readOnly"):
                    raise Invalid(400, f"{where}.{key} is output only")
                self._check(item, properties[key], f"{where}.{key}")
        elif "additionalProperties" in schema:
            for key, item in value.items():
                self._check(item, schema["additionalProperties"], f"{where}[{key!r}]")

    @staticmethod
    def _check_string(value: Any, schema: dict[str, Any], where: str) -> None:
        if not isinstance(value, str):
            raise Invalid(400, f"{where}: expected a string, got {value!r}")
        if "enum" in schema and value not in schema["enum"]:
            raise Invalid(400, f"{where}: {value!r} is not one of {schema['enum']}")
        if schema.get("format") == "google-duration" and not re.fullmatch(r"\d+(\.\d+)?s", value):
            raise Invalid(400, f"{where}: {value!r} is not a duration like '3600s'")
