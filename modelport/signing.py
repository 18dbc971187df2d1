"""Who wrote this folder: ``manifest.sig``, signatures over the exact bytes of ``manifest.json``.

Two kinds of signature, both over the same bytes:

- ``hmac-sha256`` under a local key, created on first use in the user's config folder
  (``$MODELPORT_CONFIG_DIR``, default ``~/.config/modelport``; never in an artifact folder).
  It proves that this user account on this machine wrote the manifest.
- ``ed25519`` (``run --sign-with KEY``), for sharing: anyone holding the public key
  (``verify --trusted-key KEY.pub``) can check it. Done with ``cryptography``, imported only here
  and only when a key is used, so records and the CLI parser stay light.

A signature proves who wrote the manifest and that not one byte of it changed since; the
manifest's sha256 list then carries that to every file. It says nothing about whether the
model is good, and a key that leaks signs anything.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import stat
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict

from modelport.errors import UsageError
from modelport.fsutil import atomic_write

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

__all__ = [
    "SIGNATURE_NAME",
    "SignatureStatus",
    "Signer",
    "TrustedKey",
    "config_dir",
    "create_key_pair",
    "key_info",
    "load_trusted_keys",
    "signature_status",
]

SIGNATURE_NAME = "manifest.sig"
HMAC = "hmac-sha256"
ED25519 = "ed25519"
_LOCAL_KEY_FILE = "local-hmac.key"
_MAX_SIG_BYTES = 64 * 1024  # a real one is ~400 bytes; a hostile one is not read whole
_MAX_MANIFEST_BYTES = 256 * 1024 * 1024

_MISSING = "is missing"

SignatureState = Literal["valid", "unknown-key", "absent", "invalid"]


class SignatureStatus(BaseModel):
    """What ``verify`` found in ``manifest.sig``; only ``valid`` proves who wrote the manifest."""

    model_config = ConfigDict(extra="forbid")

    status: SignatureState
    algorithm: str | None = None  # of the signature that decided the status
    key_id: str | None = None
    key: Literal["local", "trusted"] | None = None  # valid under the local HMAC key or a trusted public key
    message: str

    def describe(self) -> str:
        return f"{self.status}: {self.message}"


def config_dir() -> Path:
    return Path(os.environ.get("MODELPORT_CONFIG_DIR") or Path.home() / ".config" / "modelport")


def _hmac_key_id(key: bytes) -> str:
    # Derived, not the key's own hash, so the id never helps guess the key.
    return "hmac:" + hmac.new(key, b"modelport key id", hashlib.sha256).hexdigest()[:16]


def _public_key_id(raw: bytes) -> str:
    return "ed25519:" + hashlib.sha256(raw).hexdigest()[:16]


def _local_key(*, create: bool) -> bytes | None:
    """The local HMAC key (32 random bytes, hex in a 0600 file); created when ``create`` and missing."""
    path = config_dir() / _LOCAL_KEY_FILE
    try:
        text = path.read_text(encoding="ascii").strip()
    except (FileNotFoundError, NotADirectoryError):
        if not create:
            return None
        text = secrets.token_hex(32)
        try:
            _create_key_file(path, text)
        except FileExistsError:  # another run created it first
            return _local_key(create=False)
        except OSError as e:
            raise UsageError(
                f"cannot create the local signing key {path}: {e.strerror or e}; "
                "set MODELPORT_CONFIG_DIR to a folder you can write"
            ) from e
    except (OSError, UnicodeDecodeError) as e:
        raise UsageError(
            f"cannot read the local signing key {path}: {e}; fix or delete it, or set MODELPORT_CONFIG_DIR"
        ) from e
    try:
        key = bytes.fromhex(text)
    except ValueError:
        key = b""
    if len(key) != 32:
        raise UsageError(f"the local signing key {path} is damaged; delete it (a new one is made on the next run)")
    return key


def _create_key_file(path: Path, text: str) -> None:
    """Write the key whole under a temporary name, then link it in: a concurrent run never reads half a key."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".local-hmac-")  # mode 0600
    try:
        with os.fdopen(fd, "w", encoding="ascii") as fh:
            fh.write(text + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.link(tmp, path)  # fails if the key exists
    finally:
        os.unlink(tmp)


def _pem(path: Path) -> bytes:
    try:
        data = path.read_bytes()
    except OSError as e:
        raise UsageError(f"cannot read the key {path}: {e.strerror or e}") from e
    return data


def _private_key(path: Path) -> Ed25519PrivateKey:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    try:
        key = load_pem_private_key(_pem(path), password=None)
    except (ValueError, TypeError) as e:
        raise UsageError(
            f"{path} is not an unencrypted PEM private key ({e}); make one with `modelport key create PATH`"
        ) from e
    if not isinstance(key, Ed25519PrivateKey):
        raise UsageError(f"{path} is not an Ed25519 key; make one with `modelport key create PATH`")
    return key


def _raw_public(key: Ed25519PublicKey) -> bytes:
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


@dataclass(frozen=True)
class TrustedKey:
    key_id: str
    raw: bytes  # the Ed25519 public key
    path: str


def _public_key(path: Path) -> TrustedKey:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    data = _pem(path)
    if b"PRIVATE KEY" in data:
        return _trusted(_private_key(path).public_key(), path)
    try:
        key = load_pem_public_key(data)
    except (ValueError, TypeError) as e:
        raise UsageError(
            f"{path} is not a PEM public key ({e}); pass the .pub file `modelport key create` wrote"
        ) from e
    if not isinstance(key, Ed25519PublicKey):
        raise UsageError(f"{path} is not an Ed25519 public key; pass the .pub file `modelport key create` wrote")
    return _trusted(key, path)


def _trusted(key: Ed25519PublicKey, path: Path) -> TrustedKey:
    raw = _raw_public(key)
    return TrustedKey(_public_key_id(raw), raw, str(path))


def load_trusted_keys(paths: Iterable[str | Path]) -> list[TrustedKey]:
    return [_public_key(Path(p)) for p in paths]


def create_key_pair(path: str | Path) -> TrustedKey:
    """Write a new Ed25519 private key (PEM, mode 0600) at ``path`` and its public key at ``path.pub``."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import (
        Encoding,
        NoEncryption,
        PrivateFormat,
        PublicFormat,
    )

    private_path = Path(path)
    public_path = Path(f"{private_path}.pub")
    for p in (private_path, public_path):
        if p.exists() or p.is_symlink():
            raise UsageError(f"{p} exists; choose another path (a key is never overwritten)")
    key = Ed25519PrivateKey.generate()
    private_pem = key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    public_pem = key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    try:
        fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(private_pem)
        public_path.write_bytes(public_pem)
    except OSError as e:
        raise UsageError(f"cannot write the key {private_path}: {e.strerror or e}") from e
    return _trusted(key.public_key(), public_path)


def key_info(path: str | Path) -> TrustedKey:
    """The key id of a private key file or a public key file."""
    return _public_key(Path(path))


@dataclass
class Signer:
    """The keys a run signs its manifest with, loaded before any work so a bad key fails early."""

    hmac_key: bytes
    ed25519: Ed25519PrivateKey | None = None

    @classmethod
    def create(cls, sign_with: str | Path | None = None) -> Signer:
        key = _local_key(create=True)
        assert key is not None
        return cls(key, _private_key(Path(sign_with)) if sign_with is not None else None)

    def sign(self, folder: Path) -> Path:
        """Write ``folder/manifest.sig`` over the manifest's exact bytes (call it after the manifest is written)."""
        from modelport.pipeline.outdir import MANIFEST_NAME

        data = (folder / MANIFEST_NAME).read_bytes()
        entries = [
            {
                "algorithm": HMAC,
                "key_id": _hmac_key_id(self.hmac_key),
                "signature": hmac.new(self.hmac_key, data, hashlib.sha256).hexdigest(),
            }
        ]
        if self.ed25519 is not None:
            raw = _raw_public(self.ed25519.public_key())
            entries.append(
                {
                    "algorithm": ED25519,
                    "key_id": _public_key_id(raw),
                    "signature": base64.b64encode(self.ed25519.sign(data)).decode("ascii"),
                }
            )
        body = {"kind": "modelport-signature", "version": 1, "signed_file": MANIFEST_NAME, "signatures": entries}
        path = folder / SIGNATURE_NAME
        with atomic_write(path) as fh:
            fh.write((json.dumps(body, indent=2) + "\n").encode())
        return path


def _read_regular(path: Path, limit: int) -> bytes | str:
    """The bytes of a regular file of at most ``limit`` bytes, or why not."""
    try:
        info = path.lstat()
    except FileNotFoundError:
        return _MISSING
    except OSError as e:
        return f"cannot be read ({e.strerror or e})"
    if not stat.S_ISREG(info.st_mode):
        return "is not a regular file"
    if info.st_size > limit:
        return f"is larger than {limit} bytes"
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        with os.fdopen(fd, "rb") as fh:
            return fh.read(limit + 1)[:limit]
    except OSError as e:
        return f"cannot be read ({e.strerror or e})"


def _entries(raw: bytes) -> list[dict[str, str]] | str:
    from modelport.loaders.jsonsafe import UnsafeFile, parse_json

    try:
        body: Any = parse_json(raw, SIGNATURE_NAME)  # bounded depth and numbers, like the manifest
    except UnsafeFile as e:
        return str(e)
    if not isinstance(body, dict) or body.get("kind") != "modelport-signature" or body.get("version") != 1:
        return f"{SIGNATURE_NAME} is not a modelport signature file (version 1)"
    entries = body.get("signatures")
    if not isinstance(entries, list) or not entries:
        return f"{SIGNATURE_NAME} lists no signature"
    for entry in entries:
        keys = ("algorithm", "key_id", "signature")
        if not isinstance(entry, dict) or set(entry) != set(keys) or not all(isinstance(entry[k], str) for k in keys):
            return f"{SIGNATURE_NAME} has a malformed entry (each is algorithm, key_id, signature strings)"
    return entries


def _check(entry: dict[str, str], data: bytes, local: bytes | None, trusted: dict[str, TrustedKey]) -> bool | None:
    """True: valid; False: a known key's signature that does not match; None: the key is not known here."""
    algorithm, key_id, signature = entry["algorithm"], entry["key_id"], entry["signature"]
    if algorithm == HMAC and local is not None and key_id == _hmac_key_id(local):
        return hmac.compare_digest(hmac.new(local, data, hashlib.sha256).hexdigest(), signature)
    if algorithm == ED25519 and key_id in trusted:
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

        try:
            Ed25519PublicKey.from_public_bytes(trusted[key_id].raw).verify(
                base64.b64decode(signature, validate=True), data
            )
        except (InvalidSignature, ValueError):
            return False
        return True
    return None


def signature_status(folder: str | Path, trusted_keys: Sequence[TrustedKey | str | Path] = ()) -> SignatureStatus:
    """Whether ``folder/manifest.json`` is signed by the local HMAC key or one of ``trusted_keys``.

    ``valid`` only when a known key's signature matches and no known key's signature fails;
    ``invalid`` when a known key's signature does not match the manifest's bytes (it changed
    since it was signed) or the signature file is damaged; ``unknown-key`` when no signature is
    under a key known here; ``absent`` when there is no ``manifest.sig``. Never creates a key.
    """
    from modelport.pipeline.outdir import MANIFEST_NAME

    root = Path(folder)
    keys = [k if isinstance(k, TrustedKey) else _public_key(Path(k)) for k in trusted_keys]
    trusted = {k.key_id: k for k in keys}
    raw = _read_regular(root / SIGNATURE_NAME, _MAX_SIG_BYTES)
    if raw == _MISSING:
        return SignatureStatus(status="absent", message=f"the folder has no {SIGNATURE_NAME}")
    if isinstance(raw, str):
        return SignatureStatus(status="invalid", message=f"{SIGNATURE_NAME} {raw}")
    entries = _entries(raw)
    if isinstance(entries, str):
        return SignatureStatus(status="invalid", message=entries)
    data = _read_regular(root / MANIFEST_NAME, _MAX_MANIFEST_BYTES)
    if isinstance(data, str):
        return SignatureStatus(status="invalid", message=f"{MANIFEST_NAME} {data}")
    local = _local_key(create=False)
    results = [(entry, _check(entry, data, local, trusted)) for entry in entries]
    bad = next((e for e, ok in results if ok is False), None)
    if bad is not None:
        return SignatureStatus(
            status="invalid",
            algorithm=bad["algorithm"],
            key_id=bad["key_id"],
            message=f"the {bad['algorithm']} signature of key {bad['key_id']} does not match {MANIFEST_NAME}: "
            "it changed after it was signed",
        )
    good = [e for e, ok in results if ok]
    # A trusted public key outranks the local key: it is what a colleague's folder is checked with.
    good.sort(key=lambda e: e["algorithm"] != ED25519)
    if good:
        best = good[0]
        kind: Literal["local", "trusted"] = "trusted" if best["algorithm"] == ED25519 else "local"
        who = f"trusted key {trusted[best['key_id']].path}" if kind == "trusted" else "this machine's local key"
        return SignatureStatus(
            status="valid",
            algorithm=best["algorithm"],
            key_id=best["key_id"],
            key=kind,
            message=f"signed by {who} ({best['key_id']})",
        )
    ids = ", ".join(e["key_id"] for e in entries)
    return SignatureStatus(
        status="unknown-key",
        algorithm=entries[0]["algorithm"],
        key_id=entries[0]["key_id"],
        message=f"signed by {ids}, none of them known here; pass the signer's public key with --trusted-key FILE.pub",
    )
