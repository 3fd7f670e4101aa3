"""The signed C2PA manifest embedded in the MP4 (optional extra `talkinghead[provenance]`: c2pa-python).

The manifest says, under a signature that covers every byte of the video except the manifest itself, that
the file was created by a trained algorithm (IPTC digital source type `trainedAlgorithmicMedia`) with this
version of talkinghead, and for a dub, which video it started from (as an ingredient, with its SHA-256).
Changing the file afterwards (re-encoding, trimming, even one byte of the picture data) breaks the hash and
`read_manifest` reports "tampered"; stripping the metadata removes it ("absent"), which is what the
watermark is for.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

from talkinghead.errors import OutputError
from talkinghead.provenance.label import Label
from talkinghead.provenance.signer import LOCAL_ORG, credentials

__all__ = ["DIGITAL_SOURCE_TYPE", "available", "file_sha256", "read_manifest", "sign_file"]

DIGITAL_SOURCE_TYPE = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
_ASSERTION = "org.talkinghead.provenance"


def available() -> bool:
    """Whether c2pa-python (the `provenance` extra) is installed and loads."""
    try:
        import c2pa  # noqa: F401
    except (ImportError, OSError):
        return False
    return True


def file_sha256(path: str | os.PathLike[str]) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _definition(label: Label, title: str, ingredient_sha256: str | None) -> dict[str, Any]:
    name, _, version = label.generator.partition(" ")
    agent = {"name": name, "version": version}
    ours: dict[str, Any] = {
        "synthetic": True,
        "mode": label.mode,
        "job_id": label.job_id,
        "watermark": label.watermark,
        "created": label.created,
    }
    if ingredient_sha256:
        ours["source_sha256"] = ingredient_sha256
    return {
        "claim_generator_info": [agent],
        "title": title,
        "format": "video/mp4",
        "assertions": [
            {
                "label": "c2pa.actions",
                "data": {
                    "actions": [
                        {
                            "action": "c2pa.created",
                            "digitalSourceType": DIGITAL_SOURCE_TYPE,
                            "softwareAgent": agent,
                            "when": label.created,
                        }
                    ]
                },
            },
            {"label": _ASSERTION, "data": ours},
        ],
    }


def sign_file(path: str | os.PathLike[str], label: Label, title: str, ingredient: Path | None = None) -> None:
    """Embed a signed manifest in the MP4 at `path` (rewritten in place through a temporary file)."""
    import c2pa

    creds = credentials()
    src = Path(path)
    tmp = src.with_name(src.name + ".c2pa.mp4")
    try:
        signer = c2pa.Signer.from_info(c2pa.C2paSignerInfo(creds.alg, creds.chain, creds.key, None))
        digest = file_sha256(ingredient) if ingredient is not None else None
        with c2pa.Builder(_definition(label, title, digest)) as builder:
            if ingredient is not None:
                try:
                    with open(ingredient, "rb") as f:
                        builder.add_ingredient(
                            {"title": ingredient.name, "relationship": "parentOf", "format": "video/mp4"},
                            "video/mp4",
                            f,
                        )
                except c2pa.C2paError:
                    pass  # a source c2pa cannot parse (damaged, not MP4): its hash is still in our assertion
            with open(src, "rb") as s, open(tmp, "w+b") as d:
                builder.sign(signer, "video/mp4", s, d)
        signer.close()
        os.replace(tmp, src)
    except c2pa.C2paError as exc:
        reason = " ".join(str(exc).split())
        raise OutputError(f"Signing the C2PA manifest failed: {reason}.") from None
    finally:
        if tmp.exists():
            tmp.unlink()


def read_manifest(path: str | os.PathLike[str]) -> dict[str, Any]:
    """{status: valid|tampered|absent|unavailable, signer, self_signed, trusted, ...} for one file."""
    if not available():
        return {
            "status": "unavailable",
            "signer": None,
            "self_signed": None,
            "reason": "c2pa-python is not installed (pip install 'talkinghead[provenance]')",
        }
    import c2pa

    try:
        with open(path, "rb") as f, c2pa.Reader("video/mp4", f) as reader:
            state = reader.get_validation_state()
            results = reader.get_validation_results() or {}
            active = reader.get_active_manifest() or {}
    except c2pa.C2paError as exc:
        if "ManifestNotFound" in type(exc).__name__ or "no JUMBF" in str(exc):
            return {"status": "absent", "signer": None, "self_signed": None}
        return {"status": "tampered", "signer": None, "self_signed": None, "reason": str(exc)}
    failures = [r.get("code", "") for r in (results.get("activeManifest") or {}).get("failure", [])]
    trust = {"signingCredential.untrusted"}
    broken = [c for c in failures if c not in trust]
    sig = active.get("signature_info") or {}
    issuer = str(sig.get("issuer") or "")
    actions = [
        a
        for x in active.get("assertions", [])
        if x.get("label", "").startswith("c2pa.actions")
        for a in x.get("data", {}).get("actions", [])
    ]
    ours = next((x.get("data") for x in active.get("assertions", []) if x.get("label") == _ASSERTION), None)
    return {
        "status": "tampered" if broken or state == "Invalid" else "valid",
        "signer": sig.get("common_name") or issuer or None,
        "issuer": issuer or None,
        "self_signed": issuer == LOCAL_ORG,
        "trusted": state == "Trusted",
        "failures": broken,
        "digital_source_type": next(
            (a.get("digitalSourceType") for a in actions if a.get("action") == "c2pa.created"), None
        ),
        "generator": active.get("claim_generator_info", [{}])[0].get("version")
        and f"{active['claim_generator_info'][0].get('name')} {active['claim_generator_info'][0].get('version')}",
        "ingredients": [i.get("title") for i in active.get("ingredients", [])],
        "talkinghead": ours,
    }
