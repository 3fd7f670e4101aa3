"""Avatars: a person adapted from a short clip of them talking (`talkinghead avatar`).

`build_avatar` makes one pass over the clip and keeps what a single photo cannot give: the best
reference frame, the person's own mouth interiors, their closed lids and their head-motion and blink
style; `load_avatar` reads the file back (`Animator.set_avatar` uses it). Format: docs/AVATAR.md.
Names are imported lazily: checking a file's format must not load the face tracker.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from talkinghead.lazy import lazy_getattr

_API = {
    "build_avatar": "talkinghead.avatar.build",
    **{
        n: "talkinghead.avatar.file"
        for n in ("FORMAT", "Avatar", "AvatarStyle", "check_avatar", "load_avatar", "save_avatar")
    },
}
__all__ = ["FORMAT", "Avatar", "AvatarStyle", "build_avatar", "check_avatar", "load_avatar", "save_avatar"]

if TYPE_CHECKING:
    from talkinghead.avatar.build import build_avatar
    from talkinghead.avatar.file import FORMAT, Avatar, AvatarStyle, check_avatar, load_avatar, save_avatar


__getattr__ = lazy_getattr("talkinghead.avatar", _API, globals())
