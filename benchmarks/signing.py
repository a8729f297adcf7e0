"""CPU of request signing and client assertions, per request, by profile and key type.

    python benchmarks/signing.py [--count 300]

Keys are generated in a temporary directory. Each line is the CPU time
(``time.process_time()``) of one ``sign()`` call on a realistic request (a payment
initiation: ~400-byte JSON body, the headers a PSD2 request carries), or of one
private_key_jwt assertion, averaged over ``--count`` calls. The journey engine's own CPU
per step (``benchmarks/journey_cpu.py``) comes on top for a signed step; compare the two.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from multidict import CIMultiDict

from prober.config.oauth import oauth_config
from prober.config.signing import signing_config
from prober.journey.oauth import OAuthPlan
from prober.journey.signing import Outgoing, Signer, build_signer
from prober.journey.tokens import TokenCache
from tests.signing_keys import make_key

BODY = json.dumps({
    "endToEndIdentification": "5f1c7c0e6a7b4bd1a2c3d4e5f6a7b8c9",
    "instructedAmount": {"currency": "EUR", "amount": "0.01"},
    "debtorAccount": {"iban": "DE89370400440532013000"},
    "creditorName": "bank-prober test",
    "creditorAccount": {"iban": "DE02120300000000202051"},
    "remittanceInformationUnstructured": "bank-prober 2026-11-23",
}).encode()


def per_call_ms(count: int, call: Callable[[], object]) -> float:
    call()  # warm-up: key loading, imports
    started = time.process_time()
    for _ in range(count):
        call()
    return (time.process_time() - started) * 1000.0 / count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=300)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        rsa, ec, ed = make_key(directory, "rsa"), make_key(directory, "ec", "ec"), make_key(directory, "ed", "ed25519")
        cases = [
            (
                "berlin-group RSA-2048",
                dict(profile="berlin-group", key_file=str(rsa.key_file), certificate_file=str(rsa.certificate_file)),
            ),
            (
                "berlin-group EC P-256",
                dict(profile="berlin-group", key_file=str(ec.key_file), certificate_file=str(ec.certificate_file)),
            ),
            ("stet RSA-2048", dict(profile="stet", key_file=str(rsa.key_file), key_id="https://tpp.example/qseal.pem")),
            (
                "uk-open-banking PS256",
                dict(profile="uk-open-banking", key_file=str(rsa.key_file), key_id="kid", issuer="org/ssa"),
            ),
            ("rfc9421 rsa-pss-sha512", dict(profile="rfc9421", key_file=str(rsa.key_file), key_id="k")),
            ("rfc9421 ecdsa-p256-sha256", dict(profile="rfc9421", key_file=str(ec.key_file), key_id="k")),
            ("rfc9421 ed25519", dict(profile="rfc9421", key_file=str(ed.key_file), key_id="k")),
        ]
        print(f"{'what':34} CPU ms per request (mean of {args.count})")
        for name, options in cases:
            signer = build_signer(signing_config(**options))

            def sign(signer: Signer = signer) -> None:
                headers = CIMultiDict({"X-Request-ID": "99391c7e-ad88-49ec-a2ad-99ddcb1f7721",
                                       "Content-Type": "application/json", "PSU-IP-Address": "192.0.2.10",
                                       "TPP-Redirect-URI": "https://prober.example/redirect"})
                signer.sign(Outgoing("POST", "https", "xs2a.bank.example", "/v1/payments/sepa-credit-transfers",
                                     headers, BODY))

            print(f"{name:34} {per_call_ms(args.count, sign):.3f}")
        for name, key in (("private_key_jwt PS256", rsa), ("private_key_jwt ES256", ec)):
            plan = OAuthPlan.build("site", oauth_config(token_url="https://auth.example/token", client_id="c",
                                                       key_file=str(key.key_file)), TokenCache(None))
            client = plan.client({})
            print(f"{name:34} {per_call_ms(args.count, partial(plan.request, client, {})):.3f}")


if __name__ == "__main__":
    main()
