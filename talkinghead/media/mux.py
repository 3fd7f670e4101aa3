"""Join video segments without re-encoding and mux a soundtrack with them.

A long dub is rendered as short segments (each finished one survives an interruption); the final
file is their packets copied one after another, so joining costs no quality and almost no time.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import av

from talkinghead.media.video_writer import VideoWriter
from talkinghead.types import Waveform


def join_segments(
    segments: Sequence[Path],
    out: Path,
    sound: Waveform,
    report: Callable[[str, int, int], None] = lambda stage, done, total: None,
    **writer_args: Any,
) -> None:
    """Concatenate the segments' video packets into `out` (written atomically) with `sound` as its audio.
    All segments must share one encoder setting; a decode timestamp that does not increase across a
    join is nudged forward by one tick, as a muxer requires. `writer_args` go to the VideoWriter (the
    provenance label and the manifest's signing: `Stamp.join_args()`)."""
    template = av.open(os.fspath(segments[0]))
    try:
        stream = template.streams.video[0]
        with VideoWriter(
            out,
            stream.codec_context.width,
            stream.codec_context.height,
            fps=float(stream.average_rate or 25),
            audio=sound,
            copy_from=stream,
            **writer_args,
        ) as writer:
            last_dts = None
            for k, seg in enumerate(segments):
                with av.open(os.fspath(seg)) as c:
                    for packet in c.demux(c.streams.video[0]):
                        if packet.pts is None:
                            continue
                        if packet.dts is not None and last_dts is not None and packet.dts <= last_dts:
                            packet.dts = last_dts + 1
                        last_dts = packet.dts
                        writer.write_packet(packet)
                report("Writing", k + 1, len(segments))
    finally:
        template.close()
