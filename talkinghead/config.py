"""Options for each stage, as frozen dataclasses; the CLI maps 1:1 onto them."""

from __future__ import annotations

from dataclasses import dataclass

# speech -> mouth motion: "standard" (the lips model alone, log-mel, can stream) or "whisper" (averaged with a
# readout of OpenAI Whisper-base's encoder, the `[whisper]` extra: follows unseen voices better, files only)
LIPS_CHOICES = ("standard", "whisper")
# photo mode's open-mouth interior: teeth (the painted cavity with a geometric tooth row, render/tooth_row.py; no
# network), painted (procedural cavity and a flat pale band, render/mouth_interior.py), learned (the network,
# render/learned_mouth.py) or hybrid (the network's cavity with the tooth row)
MOUTH_CHOICES = ("teeth", "painted", "learned", "hybrid")
# x264 options photo mode adds to the writer's `veryfast` (generate, and a stream recorded from a pipe): the
# one-step subpixel refinement. A photo's frames are one still, warped smoothly, which it predicts as well: x264
# takes less CPU for a few % more bytes at the same quality (`bench_real_photo.py --encoder-cost`, RESULTS.md
# issue 16, session 8). Filmed video (a dub) loses more bytes and SSIM to it (encoder_tradeoff.py): dubs keep
# `veryfast` as it is.
PHOTO_X264 = "subme=1"


@dataclass(frozen=True)
class GenerateOptions:
    size: int | None = None  # longer side of the output; None = the photo's own size
    fps: float = 25.0
    seed: int = 0
    still: bool = False  # no head motion (blinks kept)
    face_index: int = 0  # 0 = largest face
    pose_scale: float = 1.0
    lip_strength: float = 1.0  # scales mouth motion (articulation); 0 keeps the mouth closed
    blinks_per_min: float = 17.0
    crf: int = 20
    pose_from: str | None = None  # driving video: head pose and blinks follow it
    emotion: str = "neutral"
    emotion_strength: float = 1.0
    watermark: bool = True  # invisible watermark in the pixels (the label and manifest are always written)
    mouth: str = "teeth"  # open-mouth interior: one of MOUTH_CHOICES
    lips: str = "standard"  # mouth motion from speech: one of LIPS_CHOICES


@dataclass(frozen=True)
class DubOptions:
    face: str = "auto"  # "auto" (speaking/largest), "N" (0 = largest) or "x,y" (the face at that pixel)
    loop: str = "pingpong"  # audio longer than the video: pingpong | loop | freeze
    rest: str = "keep"  # audio shorter: keep (rest of the video with its own sound) | trim
    lip_strength: float = 1.0
    crf: int = 18
    preset: str = "veryfast"
    resume: bool = True  # continue an interrupted dub of the same inputs and options
    watermark: bool = True  # invisible watermark in the pixels (the label and manifest are always written)
    lips: str = "standard"  # mouth motion from speech: one of LIPS_CHOICES


def check_mouth(mouth: str) -> None:
    """InputError for an unknown photo-mode interior (`mouth`)."""
    from talkinghead.errors import InputError

    if mouth not in MOUTH_CHOICES:
        raise InputError(f"mouth must be {', '.join(MOUTH_CHOICES[:-1])} or {MOUTH_CHOICES[-1]}, not {mouth}.")


def check_lips(lips: str) -> None:
    """InputError for an unknown `lips` choice; for "whisper", the install hint unless its extra is installed."""
    from talkinghead.errors import InputError

    if lips not in LIPS_CHOICES:
        raise InputError(f"lips must be {' or '.join(LIPS_CHOICES)}, not {lips}.")
    if lips == "whisper":
        from talkinghead.audio.whisper import check_installed

        check_installed()
