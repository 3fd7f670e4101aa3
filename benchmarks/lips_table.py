"""Before/after table (markdown) from the --json outputs of eval_lips.py or lips_series.py.

Per clip for the unseen non-Arabic speakers, per identity for the LRC-AR presenters (identities from the
corpus MANIFEST.tsv), group means, GRID and the loudness baseline.
Run: python benchmarks/lips_table.py before.json after.json [--labels before after] [--manifest MANIFEST.tsv]
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import numpy as np
from lips_series import GROUPS, group_of

MANIFEST = Path(__file__).resolve().parents[2] / "shared" / "data" / "MANIFEST.tsv"


def load_rows(path: Path) -> list[dict]:
    data = json.loads(path.read_text())
    rows = data if isinstance(data, list) else next(iter(data.values()))  # eval_lips: list; lips_series: {name: rows}
    for r in rows:
        r["group"] = r.get("group") or group_of(r["clip"])
        r["clip"] = r["clip"].split("__")[-1]
        r.setdefault("r_loudness", r.get("r_loud"))
    return rows


def identities(manifest: Path) -> dict[str, str]:
    if not manifest.exists():
        return {}
    with manifest.open() as f:
        rows = csv.DictReader(f, delimiter="\t")
        return {Path(r["path"]).stem: r["identity"] for r in rows if r["kind"] == "talking"}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("json", nargs="+", type=Path)
    ap.add_argument("--labels", nargs="+", default=None)
    ap.add_argument("--manifest", type=Path, default=MANIFEST)
    args = ap.parse_args()
    labels = args.labels or [p.stem for p in args.json]
    runs = [{r["clip"]: r for r in load_rows(p)} for p in args.json]
    ids = identities(args.manifest)
    keys = ("r", "r_width", "lmd", "amp")
    head = "| clips | n | " + " | ".join(f"{k} {lab}" for k in keys for lab in labels) + " | loudness r |"
    print(head)
    print("|" + "---|" * (2 + len(keys) * len(labels) + 1))

    def line(name: str, clips: list[str]) -> None:
        clips = [c for c in clips if all(c in run for run in runs)]
        if not clips:
            return
        cells = [
            f"{np.nanmean([run[c][k] for c in clips]):.3f}"
            if k != "lmd"
            else f"{np.nanmean([run[c][k] for c in clips]):.2f}"
            for k in keys
            for run in runs
        ]
        loud = np.nanmean([runs[0][c]["r_loudness"] for c in clips])
        print(f"| {name} | {len(clips)} | " + " | ".join(cells) + f" | {loud:.3f} |")

    first = runs[0]
    for g in GROUPS:
        members = sorted(c for c in first if first[c]["group"] == g)
        if g in ("old five", "third pass"):
            for c in members:
                line(c, [c])
        elif g == "lrc-ar":
            for ident in sorted({ids.get(c, "?") for c in members}):
                line(f"LRC-AR {ident.replace('LRC-AR ', '')}", [c for c in members if ids.get(c, "?") == ident])
        line(f"**{g} (mean)**", members)
    line("**all unseen (clip mean)**", sorted(c for c in first if first[c]["group"] != "grid"))
    line(
        "**unseen, old five + third pass (clip mean)**",
        sorted(c for c in first if first[c]["group"] in ("old five", "third pass")),
    )


if __name__ == "__main__":
    main()
