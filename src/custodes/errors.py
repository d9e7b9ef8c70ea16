"""The one exception tree of custodes.

Every error a person can cause or meet derives from :class:`CustodesError`, whose
:meth:`~CustodesError.diagnostics` is the sentence shown to people (the CLI prints it and exits
with status 1; the HTTP layer maps it to one JSON error shape)::

    CustodesError
    ├── ConfigError            a setting, key file, schema or policy file is missing or wrong
    ├── InputError             bad input from a caller: malformed ID number, unknown field, ...
    ├── CryptoError            a cryptographic operation could not be done
    │   └── IntegrityError     a ciphertext failed authentication (tampered, moved or swapped)
    ├── VerificationError      a proof or signature did not verify
    │   ├── InclusionError
    │   ├── ConsistencyError
    │   └── SignatureError
    ├── AuthenticationError    no valid credentials (HTTP 401): missing, unknown, expired
    ├── AccessDenied           policy refused the access; carries the missing condition(s)
    ├── NotFound               no such record, case, accessor or subject
    └── StoreError             the storage backend failed
        └── AuditFailure       the access event could not be committed: no data is returned
"""

from __future__ import annotations

__all__ = [
    "AccessDenied",
    "AuditFailure",
    "AuthenticationError",
    "ConfigError",
    "ConsistencyError",
    "CryptoError",
    "CustodesError",
    "InclusionError",
    "InputError",
    "IntegrityError",
    "NotFound",
    "SignatureError",
    "StoreError",
    "VerificationError",
]


class CustodesError(Exception):
    """Base of every custodes error."""

    def diagnostics(self) -> str:
        """Return the message meant for people: one line, no traceback."""
        return str(self) or type(self).__name__


class ConfigError(CustodesError):
    """A setting, key file, schema or policy is missing or invalid."""


class InputError(CustodesError):
    """Input from a caller is invalid; nothing was changed."""


class CryptoError(CustodesError):
    """A cryptographic operation failed."""


class IntegrityError(CryptoError):
    """A ciphertext failed authentication: it was altered, moved or swapped."""


class VerificationError(CustodesError):
    """A proof or signature did not verify."""


class InclusionError(VerificationError):
    """An inclusion proof did not verify."""


class ConsistencyError(VerificationError):
    """A consistency proof did not verify."""


class SignatureError(VerificationError):
    """A signature did not verify."""


class AuthenticationError(CustodesError):
    """The caller presented no valid credentials (missing, unknown, expired or forged)."""


class AccessDenied(CustodesError):
    """Policy refused an access.

    ``missing`` names the condition(s) that were not met, e.g. ``("purpose",)`` or
    ``("case.approval",)``; ``reason`` is the sentence recorded in the access event.
    """

    def __init__(self, reason: str, missing: tuple[str, ...] = ()) -> None:
        super().__init__(reason)
        self.reason = reason
        self.missing = missing

    def diagnostics(self) -> str:
        return f"access denied: {self.reason}"


class NotFound(CustodesError):
    """The named record, case, accessor or subject does not exist."""


class StoreError(CustodesError):
    """The storage backend failed."""


class AuditFailure(StoreError):
    """The access event could not be committed, so the operation was refused (fail closed)."""
