"""Avatars: a person adapted from a short clip of them talking (`talkinghead avatar`).

`build_avatar` makes one pass over the clip and keeps what a single photo cannot give: the best
reference frame, the person's own mouth interiors, their closed lids and their head-motion and blink
style; `load_avatar` reads the file back (`Animator.set_avatar` uses it). Format: docs/AVATAR.md.
"""

from __future__ import annotations

from talkinghead.avatar.build import build_avatar
from talkinghead.avatar.file import FORMAT, Avatar, AvatarStyle, load_avatar, save_avatar

__all__ = ["FORMAT", "Avatar", "AvatarStyle", "build_avatar", "load_avatar", "save_avatar"]
