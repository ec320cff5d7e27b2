"""A real JWKS endpoint on loopback, serving freshly generated RSA and EC public keys."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

ISSUER = "https://idp.test.local"
AUDIENCE = "scaicrew-api"


@dataclass
class JwksServer:
    url: str
    rsa_key: rsa.RSAPrivateKey
    ec_key: ec.EllipticCurvePrivateKey
    requests: list[str]
    _server: ThreadingHTTPServer

    def service_token(
        self,
        *,
        workspace_id: str | None,
        sub: str = "svc-reporting",
        alg: str = "RS256",
        kid: str | None = "rsa-1",
        issuer: str = ISSUER,
        audience: str = AUDIENCE,
        expires_in: int = 600,
        key: Any = None,
        extra: dict[str, Any] | None = None,
    ) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": issuer,
            "aud": audience,
            "sub": sub,
            "iat": now,
            "exp": now + expires_in,
        }
        if workspace_id is not None:
            claims["workspace_id"] = workspace_id
        claims.update(extra or {})
        signing_key = key or (self.ec_key if alg.startswith("ES") else self.rsa_key)
        headers = {} if kid is None else {"kid": kid}
        return jwt.encode(claims, signing_key, algorithm=alg, headers=headers)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def start_jwks_server() -> JwksServer:
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ec_key = ec.generate_private_key(ec.SECP256R1())
    rsa_jwk = json.loads(RSAAlgorithm.to_jwk(rsa_key.public_key()))
    rsa_jwk.update({"kid": "rsa-1", "alg": "RS256", "use": "sig"})
    ec_jwk = json.loads(ECAlgorithm.to_jwk(ec_key.public_key()))
    ec_jwk.update({"kid": "ec-1", "alg": "ES256", "use": "sig"})
    body = json.dumps({"keys": [rsa_jwk, ec_jwk]}).encode()
    requests: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            requests.append(self.path)
            if self.path != "/.well-known/jwks.json":
                self.send_response(404)
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/.well-known/jwks.json"
    return JwksServer(url, rsa_key, ec_key, requests, server)
