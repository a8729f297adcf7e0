"""The simulated bank's Berlin Group / STET check, against the standard's text rather than
against the prober's signer: a request signed the way draft-cavage-12 §2.3 says passes,
and each way of building the signed text wrongly (a mistake a signer could make, and a
verifier sharing its code would repeat) is refused."""

from __future__ import annotations

import base64
import email.utils
import hashlib
from collections.abc import Callable
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from multidict import CIMultiDict

from prober.simbank.signatures.base import Refused, SignatureProfile
from prober.simbank.signatures.cavage import names_certificate, signing_string, verify_cavage
from tests.signing_keys import make_key

BODY = b'{"instructedAmount":{"currency":"EUR","amount":"1.00"}}'
TARGET = "/v1/payments/sepa-credit-transfers?withBalance=true"


def _request(headers: dict[str, str] | list[tuple[str, str]], method: str = "POST",
             target: str = TARGET) -> web.Request:
    return make_mocked_request(method, target, headers=CIMultiDict(headers))


def test_signing_string_is_built_as_the_draft_says() -> None:
    """§2.3: lowercased names, ``name: value`` lines joined by a newline, no trailing
    newline, values trimmed, a repeated header's values joined by ``, ``, and
    ``(request-target)`` as the lowercased method and the path with its query."""
    request = _request([("Date", " Tue, 07 Jun 2014 20:51:35 GMT "), ("X-Request-ID", "99391c7e"),
                        ("Cache-Control", "max-age=60"), ("Cache-Control", "must-revalidate")])
    text = signing_string(request, ["(request-target)", "date", "x-request-id", "cache-control"])
    assert text == (b"(request-target): post /v1/payments/sepa-credit-transfers?withBalance=true\n"
                    b"date: Tue, 07 Jun 2014 20:51:35 GMT\n"
                    b"x-request-id: 99391c7e\n"
                    b"cache-control: max-age=60, must-revalidate")


def test_a_covered_header_the_request_lacks_is_refused() -> None:
    with pytest.raises(Refused, match="covered header psu-id is missing"):
        signing_string(_request({"Date": "x"}), ["date", "psu-id"])


def _stet_request(tmp_path: Path,
                  build_text: Callable[[dict[str, str], list[str]], str]) -> tuple[SignatureProfile, web.Request]:
    key = make_key(tmp_path, "qseal")
    assert isinstance(key.key, rsa.RSAPrivateKey)
    date = email.utils.formatdate(usegmt=True)
    digest = "SHA-256=" + base64.b64encode(hashlib.sha256(BODY).digest()).decode()
    headers = {"Date": date, "X-Request-ID": "3b1c0e5e-6a53-4f41-9a0c-2f6f0d6b8a11", "Digest": digest}
    covered = ["(request-target)", "date", "digest", "x-request-id"]
    text = build_text(headers, covered)
    signature = base64.b64encode(key.key.sign(text.encode(), padding.PKCS1v15(), hashes.SHA256())).decode()
    headers["Signature"] = (f'keyId="https://tpp.example/qseal.pem",algorithm="rsa-sha256",'
                            f'headers="{" ".join(covered)}",signature="{signature}"')
    profile = SignatureProfile("stet", keys={"https://tpp.example/qseal.pem": key.key.public_key()})
    return profile, _request(headers)


def _by_the_draft(headers: dict[str, str], covered: list[str]) -> str:
    lowered = {k.lower(): v for k, v in headers.items()}
    return "\n".join(f"(request-target): post {TARGET}" if name == "(request-target)" else f"{name}: {lowered[name]}"
                     for name in covered)


def test_a_request_signed_by_the_draft_passes(tmp_path: Path) -> None:
    profile, request = _stet_request(tmp_path, _by_the_draft)
    verify_cavage(profile, request, BODY)  # raises Refused otherwise


@pytest.mark.parametrize(
    "mistake",
    [
        pytest.param(lambda h, c: _by_the_draft(h, c).replace("post ", "POST ", 1), id="method not lowercased"),
        pytest.param(
            lambda h, c: _by_the_draft(h, c).replace("?withBalance=true", "", 1), id="query left out of the target"
        ),
        pytest.param(lambda h, c: _by_the_draft(h, c) + "\n", id="trailing newline"),
        pytest.param(
            lambda h, c: _by_the_draft(h, c).replace("x-request-id:", "X-Request-ID:"), id="header name not lowercased"
        ),
        pytest.param(lambda h, c: _by_the_draft(h, c).replace(": ", ":"), id="no space after the colon"),
        pytest.param(
            lambda h, c: "\n".join(reversed(_by_the_draft(h, c).split("\n"))), id="lines not in the listed order"
        ),
    ],
)
def test_a_signing_string_built_wrongly_is_refused(tmp_path: Path, mistake) -> None:
    profile, request = _stet_request(tmp_path, mistake)
    with pytest.raises(Refused, match="signature does not verify"):
        verify_cavage(profile, request, BODY)


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> x509.Certificate:
    return make_key(tmp_path_factory.mktemp("qseal"), "bg").certificate


def _issuer_parts(certificate: x509.Certificate) -> list[str]:
    parts = []
    for rdn in reversed(certificate.issuer.rdns):
        for attribute in rdn:
            assert isinstance(attribute.value, str)  # bytes only for bit-string attributes, none in this DN
            parts.append(f"{attribute.rfc4514_attribute_name}={attribute.value}")
    return parts


def test_berlin_group_key_id_names_the_certificate_by_its_parts(certificate: x509.Certificate) -> None:
    """NextGenPSD2: ``SN=<serial in hex>,CA=<issuer DN>``; the serial compared as a
    number, the DN attribute by attribute, in RFC 4514 order or the reverse."""
    serial = f"{certificate.serial_number:X}"
    issuer = _issuer_parts(certificate)
    assert len(issuer) > 1  # the reversed form below must differ from the straight one
    assert names_certificate(f"SN={serial},CA={','.join(issuer)}", certificate)
    assert names_certificate(f"SN={serial.lower()},CA={','.join(issuer)}", certificate)
    assert names_certificate(f"SN=00{serial},CA={', '.join(issuer)}", certificate)
    assert names_certificate(f"SN={serial},CA={','.join(reversed(issuer))}", certificate)


@pytest.mark.parametrize("change", [
    pytest.param(lambda serial, issuer: f"SN={int(serial, 16) + 1:X},CA={issuer}", id="another serial"),
    pytest.param(lambda serial, issuer: f"SN={int(serial, 16):d},CA={issuer}", id="serial in decimal"),
    pytest.param(lambda serial, issuer: f"SN={serial},CA=CN=Another CA", id="another issuer"),
    pytest.param(lambda serial, issuer: f"CA={issuer},SN={serial}", id="parts swapped"),
    pytest.param(lambda serial, issuer: f"SN={serial}", id="no CA"),
])
def test_a_key_id_naming_another_certificate_is_refused(certificate: x509.Certificate, change) -> None:
    serial = f"{certificate.serial_number:X}"
    assert not names_certificate(change(serial, ",".join(_issuer_parts(certificate))), certificate)
