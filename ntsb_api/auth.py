"""JWT bearer tokens (HS256) and roles: viewer < analyst < admin.

A missing, malformed, badly signed or expired token is 401 (with ``WWW-Authenticate:
Bearer``); a valid token whose role is below what the route needs is 403."""

from __future__ import annotations

import functools
import time
import uuid
from dataclasses import dataclass

import jwt

ROLES = {"viewer": 1, "analyst": 2, "admin": 3}
ALGORITHM = "HS256"
ISSUER = "ntsb-lakehouse"


class AuthError(Exception):
    def __init__(self, status: int, detail: str):
        super().__init__(detail)
        self.status, self.detail = status, detail


@dataclass(frozen=True)
class Principal:
    subject: str
    role: str
    token_id: str
    expires: float = 0.0


def create_token(secret: str, role: str, ttl_seconds: int, subject: str = "ntsb") -> str:
    if role not in ROLES:
        raise ValueError(f"role {role!r}: use one of {', '.join(ROLES)}")
    if ttl_seconds <= 0:
        raise ValueError("the time to live must be positive")
    now = int(time.time())
    claims = {
        "sub": subject,
        "role": role,
        "iat": now,
        "exp": now + ttl_seconds,
        "iss": ISSUER,
        "jti": uuid.uuid4().hex,
    }
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def authenticate(secret: str, authorization: str | None) -> Principal:
    if not authorization:
        raise AuthError(401, "missing bearer token (Authorization: Bearer <token>)")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthError(401, "the Authorization header must be 'Bearer <token>'")
    who = _verified(secret, token.strip())
    if who.expires <= time.time():  # verified earlier, expired since
        raise AuthError(401, "the token has expired")
    return who


@functools.lru_cache(maxsize=4096)
def _verified(secret: str, token: str) -> Principal:
    """A token's signature and claims, checked once per process (a client sends the same
    token again and again); only valid tokens are remembered, the expiry is checked by the
    caller on every use."""
    try:
        claims = jwt.decode(
            token, secret, algorithms=[ALGORITHM], issuer=ISSUER, options={"require": ["exp", "iat", "sub", "role"]}
        )
    except jwt.ExpiredSignatureError:
        raise AuthError(401, "the token has expired") from None
    except jwt.InvalidSignatureError:
        raise AuthError(401, "invalid token: the signature does not verify") from None
    except jwt.DecodeError:  # its own message quotes decoder internals
        raise AuthError(401, "invalid token: not a well-formed JWT") from None
    except jwt.InvalidTokenError as exc:  # a missing or invalid claim, named
        raise AuthError(401, f"invalid token: {exc}") from None
    role, subject, token_id = claims.get("role"), claims.get("sub"), claims.get("jti", "")
    if not isinstance(role, str) or role not in ROLES:
        raise AuthError(401, f"invalid token: the role claim must be one of {', '.join(ROLES)}")
    if not isinstance(subject, str) or not isinstance(token_id, str):
        raise AuthError(401, "invalid token: the sub and jti claims must be strings")
    return Principal(subject, role, token_id, float(claims["exp"]))


def authorize(principal: Principal, needed: str) -> None:
    if ROLES[principal.role] < ROLES[needed]:
        raise AuthError(403, f"role {principal.role!r} may not do this: it needs {needed!r} or above")
