"""Form fields -> the keyword options of `generate` / `dub`, by their CLI names with underscores.

Only options that are safe to take from a stranger are accepted: none names a file on the server
(`--pose-from`, `--lips-weights` are command-line only), and every number has the CLI's range.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

MODES = ("generate", "dub")
FILES = {"generate": ("face", "audio"), "dub": ("video", "audio")}
_FALLBACK_EMOTIONS = ("happy", "sad", "angry", "surprised", "fear", "disgusted", "contempt")


class OptionError(ValueError):
    """A form option is unknown or out of range; the message is one sentence for the user."""


@dataclass(frozen=True)
class Option:
    parse: Callable[[str], Any]
    target: str  # keyword of generate()/dub() (= the GenerateOptions/DubOptions field)
    help: str
    negate: bool = False  # a "no_..." switch: the keyword gets the opposite value


def _number(kind: type, lo: float, hi: float) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise OptionError(f"must be a {'whole ' if kind is int else ''}number, not '{text[:40]}'") from None
        if not lo <= value <= hi or value != value:
            raise OptionError(f"must be between {lo:g} and {hi:g}, not {text[:40]}")
        return value

    return parse


def _bool(text: str) -> bool:
    t = text.strip().lower()
    if t in ("1", "true", "yes", "on"):
        return True
    if t in ("0", "false", "no", "off"):
        return False
    raise OptionError(f"must be true or false, not '{text[:40]}'")


def _choice(values: Callable[[], tuple[str, ...]]) -> Callable[[str], str]:
    def parse(text: str) -> str:
        t = text.strip().lower()
        if t not in values():
            raise OptionError(f"must be one of {', '.join(values())}, not '{text[:40]}'")
        return t

    return parse


@lru_cache(maxsize=1)
def emotions() -> tuple[str, ...]:
    """'neutral' and the names stored in the shipped emotions model (read from its metadata: no torch)."""
    path = Path(__file__).resolve().parents[1] / "weights" / "emotions.safetensors"
    try:
        from safetensors import safe_open

        with safe_open(str(path), framework="numpy") as f:
            names = tuple(json.loads((f.metadata() or {})["names"]))
    except Exception:  # the worker checks the name again when it renders
        names = _FALLBACK_EMOTIONS
    return ("neutral", *names)


def _face(text: str) -> str:
    t = text.strip().lower()
    if t == "auto" or re.fullmatch(r"\d{1,2}", t) or re.fullmatch(r"\d{1,5}(\.\d+)?,\d{1,5}(\.\d+)?", t):
        return t
    raise OptionError(f"must be 'auto', a face number (0 = largest) or a pixel position 'x,y', not '{text[:40]}'")


OPTIONS: dict[str, dict[str, Option]] = {
    "generate": {
        "size": Option(_number(int, 64, 4096), "size", "Longer side of the output in pixels (default: the photo's)."),
        "fps": Option(_number(float, 1, 60), "fps", "Output frame rate (default 25)."),
        "seed": Option(_number(int, 0, 2**31 - 1), "seed", "Seed for head motion and blinks (default 0)."),
        "still": Option(_bool, "still", "No head motion; blinks are kept (default false)."),
        "face_index": Option(_number(int, 0, 16), "face_index", "Which face to animate: 0 = largest."),
        "lip_strength": Option(_number(float, 0, 3), "lip_strength", "Scale of mouth motion (default 1)."),
        "pose_scale": Option(_number(float, 0, 3), "pose_scale", "Scale of head motion (default 1)."),
        "blink_rate": Option(_number(float, 0, 60), "blinks_per_min", "Blinks per minute (default 17)."),
        "emotion": Option(
            _choice(emotions), "emotion", "neutral, happy, sad, angry, surprised, fear, disgusted or contempt."
        ),
        "emotion_strength": Option(_number(float, 0, 2), "emotion_strength", "Strength of the emotion (default 1)."),
        "no_watermark": Option(
            _bool, "watermark", "true: no invisible watermark (the label says so; label and manifest stay).", True
        ),
    },
    "dub": {
        "face": Option(_face, "face", "auto (the speaking/largest face), N (0 = largest) or x,y (a pixel)."),
        "loop": Option(
            _choice(lambda: ("pingpong", "loop", "freeze")),
            "loop",
            "Audio longer than the video: pingpong, loop or freeze.",
        ),
        "rest": Option(_choice(lambda: ("keep", "trim")), "rest", "Audio shorter than the video: keep or trim."),
        "lip_strength": Option(_number(float, 0, 3), "lip_strength", "Scale of mouth motion (default 1)."),
        "crf": Option(_number(int, 0, 51), "crf", "H.264 quality, lower = better and bigger (default 18)."),
        "no_watermark": Option(
            _bool, "watermark", "true: no invisible watermark (the label says so; label and manifest stay).", True
        ),
    },
}


def parse_options(mode: str, fields: dict[str, str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(keyword overrides for the pipeline, the same options by their API names to show back).
    Empty values count as not given (an HTML form sends its empty inputs)."""
    known = OPTIONS[mode]
    overrides: dict[str, Any] = {}
    shown: dict[str, Any] = {}
    for name, text in fields.items():
        if name == "mode":
            continue
        if name not in known:
            other = next((m for m in MODES if m != mode and name in OPTIONS[m]), None)
            hint = f" in {mode} mode" if other else f"; options of {mode} are {', '.join(known)}"
            raise OptionError(f"Unknown option '{name[:40]}'{hint}.")
        if text.strip() == "":
            continue
        try:
            value = known[name].parse(text)
        except OptionError as exc:
            raise OptionError(f"The option '{name}' {exc}.") from None
        overrides[known[name].target] = (not value) if known[name].negate else value
        shown[name] = value
    return overrides, shown
