"""Checking a parsed Bicep resource against Azure's own type definitions (the extract in azure-types.json)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

EXTRACT = Path(__file__).with_name("azure-types.json")
# bicep-types' ObjectTypePropertyFlags.
REQUIRED, READ_ONLY = 1, 2
# Keys of a resource declaration that are Bicep's, not the resource body's.
BICEP_KEYS = {"parent", "scope", "dependsOn"}


def load_extract() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(EXTRACT.read_text())
    return data


def _is_expression(value: Any, symbols: set[str]) -> bool:
    """A value only a deployment knows: a reference to a parameter, variable or resource, an interpolation, a
    function or an operator. Such values are not type-checked; the property they are set on still is."""
    if isinstance(value, dict):
        return "operator" in value or "function" in value
    if isinstance(value, str):
        return "${" in value or value in symbols or value.split(".")[0] in symbols and "." in value
    return False


@dataclass
class Report:
    """What a check found, and how much it looked at."""

    errors: list[str] = field(default_factory=list)
    properties: int = 0  # property settings checked against a definition


class TypeChecker:
    def __init__(self, types: list[dict[str, Any]], symbols: set[str], where: str, report: Report) -> None:
        self.types = types
        self.symbols = symbols
        self.where = where
        self.report = report

    def resolve(self, ref: dict[str, Any]) -> dict[str, Any]:
        return self.types[int(ref["$ref"].rsplit("/", 1)[1])]

    def error(self, path: str, message: str) -> None:
        self.report.errors.append(f"{self.where}: {path}: {message}")

    def check(self, value: Any, type_: dict[str, Any], path: str) -> None:
        if _is_expression(value, self.symbols):
            return
        kind = type_["$type"]
        if kind == "AnyType":
            return
        if kind == "ObjectType":
            self._object(value, type_["properties"], type_.get("additionalProperties"), path)
        elif kind == "DiscriminatedObjectType":
            self._discriminated(value, type_, path)
        elif kind == "ArrayType":
            if not isinstance(value, list):
                self.error(path, f"expected an array, got {json.dumps(value)[:60]}")
                return
            for i, item in enumerate(value):
                self.check(item, self.resolve(type_["itemType"]), f"{path}[{i}]")
        elif kind == "UnionType":
            elements = [self.resolve(e) for e in type_["elements"]]
            if not any(self._fits(value, e) for e in elements):
                allowed = [e.get("value", e["$type"]) for e in elements]
                self.error(path, f"{json.dumps(value)[:60]} is not one of {allowed}")
        elif not self._fits(value, type_):
            self.error(path, f"{json.dumps(value)[:60]} does not fit {type_['$type']} {type_.get('value', '')}".strip())

    def _fits(self, value: Any, type_: dict[str, Any]) -> bool:
        kind = type_["$type"]
        if kind == "StringLiteralType":
            return value == type_["value"]
        if kind == "StringType":
            return isinstance(value, str) and (
                "pattern" not in type_ or re.fullmatch(type_["pattern"], value) is not None
            )
        if kind == "BooleanType":
            return isinstance(value, bool)
        if kind == "IntegerType":
            return (
                isinstance(value, int)
                and not isinstance(value, bool)
                and type_.get("minValue", value) <= value <= type_.get("maxValue", value)
            )
        if kind in ("ObjectType", "DiscriminatedObjectType"):
            return isinstance(value, dict)
        if kind == "ArrayType":
            return isinstance(value, list)
        return kind == "AnyType"

    def _object(
        self, value: Any, properties: dict[str, Any], additional: dict[str, Any] | None, path: str, top: bool = False
    ) -> None:
        if not isinstance(value, dict):
            self.error(path, f"expected an object, got {json.dumps(value)[:60]}")
            return
        for key, item in value.items():
            if top and key in BICEP_KEYS:
                continue
            here = f"{path}.{key}" if path else key
            self.report.properties += 1
            if key in properties:
                prop = properties[key]
                if prop["flags"] & READ_ONLY and not prop["flags"] & REQUIRED:
                    self.error(here, "is read-only: Azure sets it, a template cannot")
                self.check(item, self.resolve(prop["type"]), here)
            elif additional is not None:
                self.check(item, self.resolve(additional), here)
            else:
                near = [name for name in properties if name.lower() == key.lower()]
                hint = f" (Azure spells it {near[0]!r})" if near else ""
                self.error(here, f"is not a property of this type{hint}")
        for name, prop in properties.items():
            if prop["flags"] & REQUIRED and not prop["flags"] & READ_ONLY and name not in value:
                self.error(f"{path}.{name}" if path else name, "is required and missing")

    def _discriminated(self, value: Any, type_: dict[str, Any], path: str, top: bool = False) -> None:
        if not isinstance(value, dict):
            self.error(path, f"expected an object, got {json.dumps(value)[:60]}")
            return
        tag = value.get(type_["discriminator"])
        if _is_expression(tag, self.symbols) or tag is None:
            chosen: dict[str, Any] = {}
            for element in type_["elements"].values():
                chosen |= self.resolve(element)["properties"]
            merged = type_["baseProperties"] | chosen
            self._object(value, merged, None, path, top)
            return
        if tag not in type_["elements"]:
            self.error(f"{path}.{type_['discriminator']}", f"{tag!r} is not one of {sorted(type_['elements'])}")
            return
        element = self.resolve(type_["elements"][tag])
        self._object(value, type_["baseProperties"] | element["properties"], None, path, top)

    def check_body(self, config: dict[str, Any]) -> None:
        body = self.types[0]
        if body["$type"] == "DiscriminatedObjectType":
            self._discriminated(config, body, "", top=True)
        else:
            self._object(config, body["properties"], body.get("additionalProperties"), "", top=True)


def symbols_of(parsed: dict[str, Any]) -> set[str]:
    return {
        *parsed.get("parameters", {}),
        *parsed.get("variables", {}),
        *parsed.get("resources", {}),
        *parsed.get("modules", {}),
    }


def check_file(where: str, parsed: dict[str, Any], extract: dict[str, Any], report: Report) -> list[str]:
    """Checks every resource of one parsed file; returns the `Type@version` names it declares or references."""
    seen = []
    for symbol, resource in parsed.get("resources", {}).items():
        name = f"{resource['type']}@{resource['api_version']}"
        seen.append(name)
        definition = extract["resources"].get(name)
        if definition is None:
            report.errors.append(f"{where}: {symbol}: {name} is not in tests/infra/azure-types.json")
            continue
        if resource.get("existing"):
            continue  # only its name is given; Azure has the rest
        config = resource["config"]
        if "condition" in config and "config" in config:
            config = config["config"]
        TypeChecker(definition["types"], symbols_of(parsed), f"{where} {symbol}", report).check_body(config)
    return seen
