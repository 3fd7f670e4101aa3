"""Robustness on every still in ../shared/data/portraits (photos, paintings, statues, cartoons, animals).

Animates each with the demo speech at 320 px and prints how many worked, which were refused with a
user-facing message (no face, ...) and which crashed (a bug). Run: .venv/bin/python benchmarks/portraits.py
"""

from __future__ import annotations

import tempfile
import time
import traceback
from pathlib import Path

from talkinghead.errors import TalkingHeadError
from talkinghead.pipeline import DEMO_AUDIO, Animator, generate

PORTRAITS = Path(__file__).resolve().parents[2] / "shared" / "data" / "portraits"


def main() -> None:
    photos = sorted(PORTRAITS.glob("*.jpg"))
    if not photos:
        raise SystemExit(f"no portraits at {PORTRAITS}")
    anim = Animator()
    ok, refused, crashed = [], [], []
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as d:
        for p in photos:
            try:
                generate(p, DEMO_AUDIO, Path(d) / "out.mp4", animator=anim, size=320)
                ok.append(p.name)
            except TalkingHeadError as exc:
                refused.append((p.name, str(exc)))
            except Exception:  # a bug: report and carry on
                crashed.append((p.name, traceback.format_exc(limit=3)))
    print(
        f"{len(photos)} portraits in {time.perf_counter() - t0:.0f} s: {len(ok)} animated, "
        f"{len(refused)} refused with a message, {len(crashed)} crashed"
    )
    for name, msg in refused:
        print(f"  refused  {name}: {msg}")
    for name, tb in crashed:
        print(f"  CRASHED  {name}:\n{tb}")


if __name__ == "__main__":
    main()
