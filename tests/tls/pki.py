"""Certificates made at test time (trustme): a CA, a server certificate for 127.0.0.1 and
localhost, a client certificate, all written as PEM files; no private key is committed."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import trustme

from micro.tls import TLS, ClientAuth

__all__ = ["Pki", "make_pki"]


@dataclass(frozen=True)
class Pki:
    ca: Path
    cert: Path
    key: Path
    client_cert: Path
    client_key: Path
    authority: trustme.CA

    def server(self, client_auth: ClientAuth = "none") -> TLS:
        return TLS(cert=str(self.cert), key=str(self.key), ca=str(self.ca), client_auth=client_auth)

    def client(self, *, identity: bool = True, server_name: str | None = None) -> TLS:
        if not identity:
            return TLS(ca=str(self.ca), server_name=server_name)
        return TLS(
            cert=str(self.client_cert),
            key=str(self.client_key),
            ca=str(self.ca),
            server_name=server_name,
        )

    def env(self, *, client_auth: str = "require") -> dict[str, str]:
        """The MICRO_TLS_* variables of one node of an mTLS deployment."""
        return {
            "MICRO_TLS_CA": str(self.ca),
            "MICRO_TLS_CERT": str(self.cert),
            "MICRO_TLS_KEY": str(self.key),
            "MICRO_TLS_CLIENT_AUTH": client_auth,
        }


def make_pki(directory: Path, *, hosts: tuple[str, ...] = ("127.0.0.1", "localhost")) -> Pki:
    directory.mkdir(parents=True, exist_ok=True)
    authority = trustme.CA()
    server = authority.issue_cert(*hosts)
    client = authority.issue_cert("client.example")
    paths = Pki(
        ca=directory / "ca.pem",
        cert=directory / "node.pem",
        key=directory / "node-key.pem",
        client_cert=directory / "client.pem",
        client_key=directory / "client-key.pem",
        authority=authority,
    )
    authority.cert_pem.write_to_path(str(paths.ca))
    write_chain(server, paths.cert, paths.key)
    write_chain(client, paths.client_cert, paths.client_key)
    return paths


def write_chain(cert: trustme.LeafCert, chain: Path, key: Path) -> None:
    chain.write_bytes(b"".join(blob.bytes() for blob in cert.cert_chain_pems))
    key.write_bytes(cert.private_key_pem.bytes())
    key.chmod(0o600)
