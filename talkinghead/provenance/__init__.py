"""Provenance: every output says it is synthetic, in its metadata (label), in a signed C2PA manifest, and
invisibly in its pixels (watermark); `verify` reads all three back."""

from talkinghead.provenance.stamp import Stamp
from talkinghead.provenance.verify import Verification, verify

__all__ = ["Stamp", "Verification", "verify"]
