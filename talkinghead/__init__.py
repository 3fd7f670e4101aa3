"""talkinghead: one photo + speech in any language -> a lip-synced talking-head video, on a CPU.

The public API is imported lazily (`import talkinghead` costs milliseconds; torch and mediapipe load
when a model or a face is first needed), so the command line answers help and input errors at once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from talkinghead.lazy import lazy_getattr

__version__ = "0.1.0"

# public name -> module that defines it
_API = {
    "Animator": "talkinghead.pipeline",
    "generate": "talkinghead.pipeline",
    "demo": "talkinghead.pipeline",
    "Dubber": "talkinghead.dubbing",
    "DubReport": "talkinghead.dubbing",
    "dub": "talkinghead.dubbing",
    "GenerateOptions": "talkinghead.config",
    "DubOptions": "talkinghead.config",
    "Motion": "talkinghead.types",
    "MouthGeometry": "talkinghead.types",
    "Waveform": "talkinghead.types",
    "load_model": "talkinghead.weights",
    "build_avatar": "talkinghead.avatar",
    "TalkingHeadError": "talkinghead.errors",
    "InputError": "talkinghead.errors",
    "NoFaceError": "talkinghead.errors",
    "OutputError": "talkinghead.errors",
    "verify": "talkinghead.provenance.verify",
    "Verification": "talkinghead.provenance.verify",
}

__all__ = [
    "Animator",
    "DubOptions",
    "DubReport",
    "Dubber",
    "GenerateOptions",
    "InputError",
    "Motion",
    "MouthGeometry",
    "NoFaceError",
    "OutputError",
    "TalkingHeadError",
    "Verification",
    "Waveform",
    "__version__",
    "build_avatar",
    "demo",
    "dub",
    "generate",
    "load_model",
    "verify",
]

if TYPE_CHECKING:
    from talkinghead.avatar import build_avatar
    from talkinghead.config import DubOptions, GenerateOptions
    from talkinghead.dubbing import Dubber, DubReport, dub
    from talkinghead.errors import InputError, NoFaceError, OutputError, TalkingHeadError
    from talkinghead.pipeline import Animator, demo, generate
    from talkinghead.provenance.verify import Verification, verify
    from talkinghead.types import Motion, MouthGeometry, Waveform
    from talkinghead.weights import load_model


__getattr__ = lazy_getattr("talkinghead", _API, globals())


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_API))
