"""The hidden work folder of a dub, which makes an interrupted dub resumable.

It lives next to the output (`.NAME.mp4.dub`) and is keyed by the inputs (path, size, modification
time) and the options: the same command after an interruption finds its own folder and continues,
while any change to the inputs or options starts afresh. Files are written atomically, so a file
that exists is complete. The folder is removed once the output is complete.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import asdict
from pathlib import Path

import numpy as np

from talkinghead.config import DubOptions
from talkinghead.errors import OutputError

FORMAT = 4  # bump when the work folder's contents change meaning (4: segments' stats from a warm-up prefix)


def fingerprint(path: str | os.PathLike[str]) -> dict[str, object]:
    st = os.stat(path)
    return {"path": os.path.abspath(path), "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def work_folder(
    out: Path, video: str | os.PathLike[str], audio: str | os.PathLike[str], opts: DubOptions
) -> tuple[Path, bool]:
    """The hidden folder of this job and whether it resumes one (some tracking already saved);
    reused when the same inputs and options were interrupted before, else made empty."""
    job = {
        "format": FORMAT,
        "video": fingerprint(video),
        "audio": fingerprint(audio),
        "options": {k: v for k, v in asdict(opts).items() if k != "resume"},
    }
    key = hashlib.sha256(json.dumps(job, sort_keys=True).encode()).hexdigest()[:16]
    work = out.parent / f".{out.name}.dub"
    stamp = work / "job.json"
    if work.is_dir() and opts.resume and stamp.is_file():
        try:
            if json.loads(stamp.read_text()).get("key") == key:
                return work, any(work.glob("track_*.npz"))
        except (OSError, ValueError):
            pass
    try:
        if work.exists():
            shutil.rmtree(work)
        work.mkdir()
        stamp.write_text(json.dumps({"key": key, **job}, indent=1))
    except OSError as exc:  # a folder we may not write to (the output could not be written either)
        shutil.rmtree(work, ignore_errors=True)
        reason = (exc.strerror or str(exc)).lower()
        raise OutputError(f"Cannot write to the folder '{out.parent}' ({reason}).") from None
    return work, False


def save_npz(path: Path, **arrays: np.ndarray) -> None:
    """np.savez, atomically: a chunk on disk is always whole."""
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(tmp, **arrays)
    os.replace(tmp, path)


def saved_face(work: Path) -> tuple[float, float] | None:
    """The face chosen when this job started (a resumed job keeps the same face), if any."""
    saved = work / "face.json"
    if not saved.is_file():
        return None
    x, y = json.loads(saved.read_text())["point"]
    return x, y


def save_face(work: Path, point: tuple[float, float], scores: list[float]) -> None:
    (work / "face.json").write_text(json.dumps({"point": list(point), "scores": scores}))
