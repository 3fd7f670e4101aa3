"""Everything one output gets marked with, handed to the VideoWriter as three hooks.

`Stamp.writer_args(w, h)` -> `metadata` (the label, written with the container header), `mark` (the
watermark, applied to each frame's Y plane before encoding) and `finalize` (the C2PA manifest, signed on the
finished temporary file before it is renamed into place). A dub marks its segments with the watermark only:
`segment_args` for one rendered whole (spared round all of its frames' mouths), `moving_marker` for one that
follows the tracker (spared round each frame's own mouth); it joins them with `join_args` (label and manifest, no
re-encoding).

The job id is a hash of the inputs and options, so the same job reproduces the same pixels and a resumed
dub keeps the id of its first run.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from talkinghead.face.indices import LOWER_OUTER_LIP, UPPER_OUTER_LIP, inter_ocular
from talkinghead.provenance.label import Label
from talkinghead.provenance.manifest import available, sign_file
from talkinghead.provenance.watermark import MovingSpareEmbedder, Spare, WatermarkEmbedder

__all__ = ["MIN_WATERMARK_SIDE", "Stamp", "job_id", "mouth_spare"]

# px: smaller outputs get the label and the manifest, not the watermark. Measured (RESULTS.md, issue 14): from
# 288 px every transformation left the job id exact; below it detection fell short of 99 % (third pass, with the
# mouth spared and list decoding: 224-256 px clips found after half size in 16 of 19, the job id exact in 14).
MIN_WATERMARK_SIDE = 288


# the spared box round the lips, in inter-ocular distances: sideways, up, down (the jaw opens), and the fade
SPARE_MARGINS = (0.30, 0.25, 0.60, 0.30)


def mouth_spare(points: np.ndarray) -> Spare | None:
    """The region where the watermark fades out: round the outer lips of face-mesh `points` ((478, 2+) for one
    frame or (frames, 478, 2+) for all the frames one marker serves; NaN rows are ignored), with room for the
    jaw to open. None when no frame has a face."""
    pts = np.asarray(points, np.float64).reshape(-1, 478, points.shape[-1])
    pts = pts[np.isfinite(pts[:, :, :2]).all(axis=(1, 2))]
    if not len(pts):
        return None
    io = float(np.median([inter_ocular(p) for p in pts]))
    lips = pts[:, UPPER_OUTER_LIP + LOWER_OUTER_LIP, :2].reshape(-1, 2)
    (x0, y0), (x1, y1) = lips.min(0), lips.max(0)
    side, up, down, ramp = (m * io for m in SPARE_MARGINS)
    return Spare(x0 - side, y0 - up, x1 + side, y1 + down, ramp)


def job_id(inputs: list[str | os.PathLike[str]], options: dict[str, Any], mode: str) -> str:
    """6 hex digits (the watermark's 24-bit payload) from the inputs' content, the options and the mode: the
    same job gives the same pixels wherever and whenever it runs (a file's time would make every rerun
    differ). Content = size and the first and last MB, so a long video costs no full read."""
    parts: list[object] = [mode, options]
    for p in inputs:
        if isinstance(p, (str, os.PathLike)) and os.path.isfile(p):
            parts.append([os.path.getsize(p), _ends_digest(p)])
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:6]


def _ends_digest(path: str | os.PathLike[str], block: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        h.update(f.read(block))
        f.seek(max(0, os.path.getsize(path) - block))
        h.update(f.read(block))
    return h.hexdigest()


@dataclass(frozen=True)
class Stamp:
    label: Label
    ingredient: Path | None = None  # a dub's original video

    @staticmethod
    def new(
        mode: str,
        watermark: bool,
        inputs: list[str | os.PathLike[str]],
        options: dict[str, Any],
        size: tuple[int, int],
        ingredient: str | os.PathLike[str] | None = None,
    ) -> Stamp:
        """The marks for one output of `size` (width, height). The watermark goes on every output whose shorter
        side holds at least one tile (MIN_WATERMARK_SIDE); on a thumbnail smaller than that the label says it is
        off."""
        from talkinghead import __version__

        watermark = watermark and min(size) >= MIN_WATERMARK_SIDE
        label = Label.now(f"talkinghead {__version__}", mode, watermark, job_id(inputs, options, mode))
        return Stamp(label, Path(ingredient) if ingredient is not None else None)

    def marker(self, width: int, height: int, spare: Spare | None = None) -> Callable[[np.ndarray], None] | None:
        """The watermark for frames of this size; `spare` (`mouth_spare`): the animated mouth, left unmarked."""
        return WatermarkEmbedder(width, height, int(self.label.job_id, 16), spare) if self.label.watermark else None

    def moving_marker(self, width: int, height: int, first: Spare | None) -> MovingSpareEmbedder | None:
        """The watermark of a dub's segment, spared round each frame's own mouth (set its `spare` before each
        frame); its energy boost is fixed by the segment's first spare, so the mark outside the mouth is static."""
        if not self.label.watermark:
            return None
        boost = MovingSpareEmbedder.boost_for(width, height, first)
        return MovingSpareEmbedder(width, height, int(self.label.job_id, 16), boost)

    def sign(self, tmp_path: str) -> None:
        """Embed the signed manifest when c2pa-python is installed (label and watermark work without it)."""
        if available():
            sign_file(tmp_path, self.label, self.title, self.ingredient)

    @property
    def title(self) -> str:
        return f"talkinghead {self.label.mode} {self.label.job_id}"

    def writer_args(self, width: int, height: int, spare: Spare | None = None) -> dict[str, Any]:
        """Everything: an output encoded in one go (generate)."""
        return {**self.join_args(), **self.segment_args(width, height, spare)}

    def segment_args(self, width: int, height: int, spare: Spare | None = None) -> dict[str, Any]:
        """The watermark only, one spare for the whole file (a recorded stream, a dub's segment rendered whole)."""
        return {"mark": self.marker(width, height, spare)}

    def join_args(self) -> dict[str, Any]:
        """Label and manifest: the file that is handed to the user."""
        return {"metadata": self.label.tags(), "finalize": self.sign}
