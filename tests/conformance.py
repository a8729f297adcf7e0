"""Requests checked against a PSD2 standard's official OpenAPI documents (``tests/specs/``).

:meth:`Standard.problems` takes one request as the server received it (a
:class:`~tests.fixtures.recording_bank.SentRequest`) and lists what the documents do not
allow, each line naming the request and the place:

* path and method: an operation of one of the documents must match;
* parameters (path, query, header: presence of the required ones, schema of each) and the
  body (media type, JSON schema), by ``openapi-core``'s request validators;
* the header set and the query: a header or query parameter the operation does not declare
  is refused, except the generic HTTP header fields in :data:`GENERIC_HEADERS` (the
  documents leave those out on purpose) and ``Authorization`` (a security scheme's);
* security: when every security requirement of the operation names a scheme, the request
  must carry ``Authorization: Bearer <token>`` (the OAuth2 and HTTP-bearer schemes these
  documents use). ``openapi-core`` does not check OAuth2 schemes, so this is done here.

The documents are read strictly: an object schema that lists its ``properties`` and says
nothing of ``additionalProperties`` is closed (as if ``additionalProperties: false``), so
a member the standard does not define is reported instead of passing unseen. The files
themselves are not changed; the strict reading is applied to the copy in memory.

What OpenAPI cannot express is left to the simulated bank, which verifies it on the same
requests: request signatures (Berlin Group ``Signature``/``Digest``, UK ``x-jws-signature``)
and the token's origin (OAuth2 grant, client authentication, certificate binding). The
OAuth2 flow a scheme names (client credentials or authorization code) is not compared with
the token's grant either: the documents are not reliable there (the UK 4.0 VRP document
gives ``POST /domestic-vrps`` the client-credentials scheme, where the 4.0 specification
pages ask for an authorization-code token, which the example sends).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import yaml
from openapi_core import Config, OpenAPI
from openapi_core.templating.paths.exceptions import PathError
from openapi_core.templating.paths.finders import APICallPathFinder
from openapi_core.testing import MockRequest
from openapi_core.validation.request import V30RequestBodyValidator, V30RequestParametersValidator

from tests.fixtures.recording_bank import SentRequest

SPECS = Path(__file__).resolve().parent / "specs"

GENERIC_HEADERS = frozenset({
    "host", "user-agent", "accept", "accept-encoding", "accept-language", "connection",
    "content-type", "content-length", "date", "traceparent",
})
"""HTTP header fields (RFC 9110) any client sends; the documents declare none of them
(Berlin Group: "We omit the definition of all standard HTTP header elements"). Also
W3C Trace Context's ``traceparent``, which the prober sends on every request unless a
site sets ``traceparent = false``: a standard header of its own, that no API document
declares either (gateways and tracing agents take it before the API sees the request)."""


@dataclass(frozen=True)
class Operation:
    """An operation of a document, found for one request."""

    document: Document
    method: str
    path_pattern: str
    spec: Any  # the operation's SchemaPath
    path_item: Any

    def parameters(self) -> Iterator[Any]:
        yield from self.spec.get("parameters", [])
        yield from self.path_item.get("parameters", [])

    def declared(self, location: str) -> set[str]:
        """Names of the parameters declared ``in`` location (lower case for headers)."""
        names = {p["name"] for p in self.parameters() if p["in"] == location}
        return {n.lower() for n in names} if location == "header" else names

    def security(self) -> list[dict[str, Any]]:
        root = self.document.openapi.spec
        requirements = self.spec / "security" if "security" in self.spec else root.get("security", [])
        return [dict(r.items()) for r in requirements]

    def __str__(self) -> str:
        return f"{self.method.upper()} {self.path_pattern} ({self.document.path.name})"


@dataclass
class Document:
    """One OpenAPI 3.0 document, read strictly (see the module docstring)."""

    path: Path

    @cached_property
    def openapi(self) -> OpenAPI:
        with self.path.open() as f:
            data = yaml.load(f, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
        close_objects(data)
        return OpenAPI.from_dict(data, config=Config(spec_validator_cls=None))

    @cached_property
    def host_url(self) -> str:
        """The first server's URL when absolute (requests are placed under it), else ``""``
        (relative servers are matched against the request's path)."""
        url = str(self.openapi.spec["servers"][0]["url"]) if "servers" in self.openapi.spec else "/"
        return url.rstrip("/") if "://" in url else ""

    def find(self, method: str, path: str) -> Operation | None:
        try:
            found = APICallPathFinder(self.openapi.spec).find(method.lower(), self.host_url + path)
        except PathError:
            return None
        pattern = found.path.parts[-1]
        return Operation(self, method.lower(), pattern, found.operation, found.path)


@dataclass
class Standard:
    """A standard's documents, and the requests that belong to it."""

    name: str
    """E.g. ``UK Open Banking Read/Write API 4.0.0``."""
    documents: list[Document]
    path_prefix: str
    """The requests whose path starts with this are the standard's API calls."""

    def covers(self, sent: SentRequest) -> bool:
        return sent.path.startswith(self.path_prefix)

    def operation(self, sent: SentRequest) -> Operation | None:
        return next((op for doc in self.documents if (op := doc.find(sent.method, sent.path)) is not None), None)

    def problems(self, sent: SentRequest) -> list[str]:
        """What the documents do not allow in ``sent``, one line each; ``[]`` when it conforms."""
        operation = self.operation(sent)
        if operation is None:
            return [f"{sent}: no operation of {self.name} matches {sent.method} {sent.path}"]
        request = _openapi_request(operation.document, sent)
        spec = operation.document.openapi.spec
        found = [*_errors(V30RequestParametersValidator(spec).iter_errors(request)),
                 *_errors(V30RequestBodyValidator(spec).iter_errors(request))]
        found += _undeclared(operation, sent)
        found += _security(operation, sent)
        return [f"{sent} [{operation}]: {problem}" for problem in found]


def _openapi_request(document: Document, sent: SentRequest) -> MockRequest:
    content_type = sent.header("Content-Type") or ""
    # Pairs, not dicts, keep repeated names: MockRequest hands them to werkzeug's
    # ImmutableMultiDict and Headers, which take pairs, though its annotations say dict.
    return MockRequest(
        document.host_url, sent.method, sent.path,
        args=list(sent.query),  # type: ignore[arg-type]  # pairs, see above
        headers=list(sent.headers),  # type: ignore[arg-type]  # pairs, see above
        data=sent.body or None,
        content_type=content_type.split(";")[0].strip().lower(),
    )


def _errors(errors: Iterator[Exception]) -> Iterator[str]:
    """Readable lines for openapi-core's errors, down to each JSON-schema failure."""
    for error in errors:
        nested = getattr(error, "errors", None)
        if nested:  # ParametersError: one per parameter
            yield from _errors(iter(nested))
            continue
        schema_errors = getattr(error.__cause__, "schema_errors", None)
        if schema_errors:
            for schema_error in schema_errors:
                where = "/".join(str(p) for p in schema_error.absolute_path) or "(root)"
                yield f"{error}: at {where}: {schema_error.message}"
        else:
            cause = f" ({error.__cause__})" if error.__cause__ is not None else ""
            yield f"{error}{cause}"


def _undeclared(operation: Operation, sent: SentRequest) -> list[str]:
    found = []
    declared_headers = operation.declared("header") | GENERIC_HEADERS | {"authorization"}
    for name, _ in sent.headers:
        if name.lower() not in declared_headers:
            found.append(f"header {name} is not declared for this operation")
    declared_query = operation.declared("query")
    found += [f"query parameter {name} is not declared for this operation"
              for name, _ in sent.query if name not in declared_query]
    if sent.body and "requestBody" not in operation.spec:
        found.append("a body is sent, but the operation has no requestBody")
    return found


def _security(operation: Operation, sent: SentRequest) -> list[str]:
    requirements = operation.security()
    if not requirements or any(not r for r in requirements):
        return []  # anonymous access allowed
    schemes = operation.document.openapi.spec / "components" / "securitySchemes"
    unchecked = sorted(name for r in requirements for name in r if not _bearer(schemes[name]))
    if unchecked:
        return [f"security schemes {unchecked} are neither OAuth2 nor HTTP bearer: not checked here"]
    authorization = sent.header("Authorization") or ""
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        names = sorted(name for r in requirements for name in r)
        return [f"security {names} needs Authorization: Bearer <token>, got {scheme or 'none'}"]
    return []


def _bearer(scheme: Any) -> bool:
    """An OAuth2 scheme, or HTTP with the bearer scheme: both carried as ``Authorization: Bearer``."""
    kind = scheme["type"]
    return kind == "oauth2" or (kind == "http" and str(scheme.get("scheme", "")).lower() == "bearer")


def close_objects(node: Any) -> None:
    """Close every object schema of a parsed document that lists ``properties`` without
    saying anything of ``additionalProperties`` (in place).

    Refuses (ValueError) a document where one ``allOf`` combines two schemas that list
    properties: closing both would reject every member of the other.
    """
    components = node.get("components", {}).get("schemas", {}) if isinstance(node, dict) else {}

    def walk(value: Any, where: str) -> None:
        if isinstance(value, list):
            for i, item in enumerate(value):
                walk(item, f"{where}[{i}]")
            return
        if not isinstance(value, dict):
            return
        members = value.get("allOf")
        if isinstance(members, list):
            _refuse_combined_properties(members, where, components)
        if isinstance(value.get("properties"), dict) and "additionalProperties" not in value:
            value["additionalProperties"] = False
        for key, item in value.items():
            if key in ("example", "examples", "x-examples"):
                continue
            if key == "properties" and isinstance(item, dict):
                for name, schema in item.items():
                    walk(schema, f"{where}/properties/{name}")
            else:
                walk(item, f"{where}/{key}")

    walk(node, "#")


def _refuse_combined_properties(members: list[Any], where: str, components: dict[str, Any]) -> None:
    """Raise ValueError when more than one of an ``allOf``'s ``members`` lists properties."""
    with_properties = [m for m in members if isinstance(_resolve(m, components), dict)
                       and "properties" in _resolve(m, components)]
    if len(with_properties) > 1:
        raise ValueError(f"{where}: allOf combines {len(with_properties)} schemas with properties; "
                         "closing them would refuse every body")


def _resolve(schema: Any, components: dict[str, Any]) -> Any:
    """``schema``, or the component schema its ``$ref`` names (followed to the end)."""
    ref = schema.get("$ref") if isinstance(schema, dict) else None
    if isinstance(ref, str) and ref.startswith("#/components/schemas/"):
        return _resolve(components.get(ref.rsplit("/", 1)[1], {}), components)
    return schema


def uk_open_banking() -> Standard:
    """UK Open Banking Read/Write API 4.0 (OpenBankingUK/read-write-api-specs)."""
    folder = SPECS / "uk-open-banking-4.0"
    names = ("account-info", "payment-initiation", "vrp", "confirmation-funds")
    return Standard("UK Open Banking Read/Write API 4.0.0",
                    [Document(folder / f"{name}-openapi.yaml") for name in names], "/open-banking/")


def berlin_group() -> Standard:
    """Berlin Group NextGenPSD2 XS2A Framework 1.3.9 (psd2-api)."""
    return Standard("Berlin Group NextGenPSD2 XS2A 1.3.9",
                    [Document(SPECS / "berlin-group-1.3" / "psd2-api_1.3.9_2021-05-04v1.yaml")], "/v1/")

