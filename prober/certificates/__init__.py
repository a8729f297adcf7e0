"""The prober's certificates and the warning ladder: what expires when, and how soon is too soon.

* :mod:`~prober.certificates.files` — a certificate file (PEM or DER) read for its facts,
  never its key; errors name the file, never its content;
* :mod:`~prober.certificates.inventory` — which certificate files a configuration uses,
  for what (mutual TLS, request signing) and by which checks;
* :mod:`~prober.certificates.ladder` — days left → the step of the warning ladder reached
  (pure; the host's clock is the only clock).

It reads files and decides nothing else: the daemon (:mod:`prober.daemon.certificates`)
watches the files, opens and resolves incidents, and reports; ``prober validate`` warns
and refuses from the same facts.
"""

from prober.certificates.files import CertificateFile, CertificateFileError, file_stamp, read_certificate_file
from prober.certificates.inventory import OwnCertificate, own_certificates
from prober.certificates.ladder import Assessment, Ladder, assess

__all__ = [
    "Assessment",
    "CertificateFile",
    "CertificateFileError",
    "Ladder",
    "OwnCertificate",
    "assess",
    "file_stamp",
    "own_certificates",
    "read_certificate_file",
]
