"""Build the bundled demo speech, talkinghead/assets/demo_speech.wav.

regenerate with: .venv/bin/python scripts/make_demo_audio.py

The demo needs speech that anyone may redistribute, so we synthesise it with
espeak-ng (via the test helper) instead of shipping a recording. It is 16 kHz
mono 16-bit to stay small, and has one exact 1 s pause of digital silence so
the demo also shows the mouth closing when the speaker stops.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from speech import speech_with_pause, write_wav  # noqa: E402

SAMPLE_RATE = 16000
OUTPUT = ROOT / "talkinghead" / "assets" / "demo_speech.wav"
PARTS = [
    "Hello! I am a talking head made from a single photo.",
    "Give me any voice, in any language, and I will speak it.",
]


def main() -> None:
    """Synthesise the demo, check it fits the asset's promises, and write it."""
    samples, pauses = speech_with_pause(PARTS, "en", pause_s=1.0, lead_s=0.3, sample_rate=SAMPLE_RATE)
    duration = samples.size / SAMPLE_RATE
    if not 6.0 <= duration <= 9.0:
        raise SystemExit(f"demo speech is {duration:.2f} s; keep it within 6-9 s")
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    write_wav(OUTPUT, samples, SAMPLE_RATE)
    gaps = ", ".join(f"{start:.3f}-{end:.3f} s" for start, end in pauses)
    size_kb = OUTPUT.stat().st_size / 1024
    print(f"wrote {OUTPUT.relative_to(ROOT)}: {duration:.2f} s, {size_kb:.0f} KB, pause {gaps}")


if __name__ == "__main__":
    main()
