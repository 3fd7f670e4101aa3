"""Write `talkinghead/weights/stream_priors.json`: corpus-wide starting values for streaming's running statistics.

A stream knows nothing of the speaker at its first frame, while the offline path normalises with the whole
clip's log-mel mean and scales the mouth by the whole clip's lip-gap spread. `motion/stream.py` starts both
running statistics from these priors and lets the stream's own audio take over as it arrives:

- `mel_mean` (80,): the mean over training clips of each clip's log-mel mean (as `features.normalize` takes it);
- `gap_std`: the median over training clips of the std of the lips model's raw lip gap on speech frames (as
  `MouthModel.scale` measures it); it belongs to one lips model, identified by `lips_fingerprint`
  (`motion/stream.py` ignores it for another model).

Run after retraining the lips model: python scripts/stream_priors.py PREPARED_CACHE [--every 7]
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import sys
from pathlib import Path

import numpy as np
import torch

from talkinghead.audio.features import log_mel
from talkinghead.audio.running import PRIORS_FILE
from talkinghead.motion.mouth import MouthModel, speech_gate
from talkinghead.motion.stream import lips_fingerprint


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("cache", type=Path, help="a prepared cache (`talkinghead prepare`), its train__ clips are read")
    ap.add_argument("--every", type=int, default=7, help="use every Nth training clip")
    args = ap.parse_args()
    torch.set_num_threads(1)
    mouth = MouthModel()
    means, stds = [], []
    paths = sorted(glob.glob(str(args.cache / "train__*.npz")))[:: args.every]
    for p in paths:
        z = np.load(p)
        if "audio" not in z.files or len(z["audio"]) < 2 * 16000:
            continue
        a = z["audio"].astype(np.float32) / 32768
        mel = log_mel(a)
        energy = mel.mean(axis=1)
        means.append(mel[energy > np.percentile(energy, 30)].mean(axis=0))
        n = int(len(a) / 16000 * 25)
        raw = mouth.raw(a, n, 25.0)
        gaps = mouth.lip_gaps(raw[speech_gate(a, n, 25.0) > 0.5])
        if len(gaps) >= 10:
            stds.append(float(gaps.std()))
    if not means or not stds:
        sys.exit(f"No training clips with speech in {args.cache}.")
    out = {
        "mel_mean": [round(float(v), 4) for v in np.mean(means, axis=0)],
        "gap_std": round(float(np.median(stds)), 5),
        "lips_fingerprint": lips_fingerprint(mouth),
        "clips": len(means),
        "command": f"python scripts/stream_priors.py {args.cache.name} --every {args.every}",
    }
    tmp = PRIORS_FILE.with_suffix(".json.partial")
    tmp.write_text(json.dumps(out) + "\n")
    os.replace(tmp, PRIORS_FILE)
    print(
        f"{len(means)} clips: gap std {out['gap_std']}, mel level {np.mean(out['mel_mean']):.2f}; wrote {PRIORS_FILE}"
    )


if __name__ == "__main__":
    main()
