"""The README and docs stand on their own and their examples run.

A user who clones the repository has only the repository: nothing in README.md or docs/ may point
outside it, every relative link must reach a file that exists, and every ```python block of the
README and docs must run as written, with its placeholder files (photo.jpg, speech.wav, film.mp4...) replaced
by the shipped demo assets.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = sorted([README, *(ROOT / "docs").glob("*.md")])

# markdown links [text](target) and images ![alt](target); the target up to whitespace or ')'
_LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
# repository paths quoted in code spans, e.g. `benchmarks/RESULTS.md`, `talkinghead/weights/lips.safetensors`
_PATH = re.compile(r"`((?:talkinghead|benchmarks|configs|docs|tests|scripts)/[\w./-]+\.\w+)`")
_FENCE = re.compile(r"^```python\n(.*?)^```", re.DOTALL | re.MULTILINE)


def _ids(paths: list[Path]) -> list[str]:
    return [str(p.relative_to(ROOT)) for p in paths]


@pytest.mark.parametrize("doc", DOCS, ids=_ids(DOCS))
def test_no_reference_outside_the_repository(doc: Path) -> None:
    text = doc.read_text(encoding="utf-8")
    bad = [n for n, line in enumerate(text.splitlines(), 1) if "../shared" in line]
    assert not bad, f"{doc.name} refers to ../shared (not in a clone of the repository) on lines {bad}"


@pytest.mark.parametrize("doc", DOCS, ids=_ids(DOCS))
def test_relative_links_exist(doc: Path) -> None:
    text = doc.read_text(encoding="utf-8")
    missing = []
    for target in _LINK.findall(text):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
            continue  # http:, https:, mailto:, in-page anchors
        path = (doc.parent / target.split("#", 1)[0]).resolve()
        if not path.exists():
            missing.append(target)
    for target in _PATH.findall(text):
        if not (ROOT / target).exists():
            missing.append(target)
    assert not missing, f"{doc.name} links to files that do not exist: {missing}"


def test_link_patterns_find_links() -> None:
    """The patterns find the links they must check (a checker that matches nothing passes everything)."""
    sample = 'See [the map](docs/A.md#top), ![img](pic.png "t"), [web](https://x.org) and `talkinghead/x.py`.'
    assert _LINK.findall(sample) == ["docs/A.md#top", "pic.png", "https://x.org"]
    assert _PATH.findall(sample) == ["talkinghead/x.py"]
    assert "docs/ARCHITECTURE.md" in _LINK.findall(README.read_text(encoding="utf-8"))


def _python_blocks() -> list[tuple[str, str]]:
    """(where, code) of every ```python block in README.md and docs/*.md."""
    return [
        (f"{doc.relative_to(ROOT)} python block {k + 1}", code)
        for doc in DOCS
        for k, code in enumerate(_FENCE.findall(doc.read_text(encoding="utf-8")))
    ]


BLOCKS = _python_blocks()


def test_readme_has_python_examples() -> None:
    readme = [code for where, code in BLOCKS if where.startswith("README.md")]
    assert readme and all("import talkinghead" in code for code in readme)


@pytest.fixture(scope="module")
def example_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding every placeholder file the examples read, made from the shipped assets."""
    import talkinghead as th
    from talkinghead.pipeline import DEMO_AUDIO, DEMO_FACE

    d = tmp_path_factory.mktemp("readme")
    shutil.copy(DEMO_FACE, d / "photo.jpg")
    shutil.copy(DEMO_AUDIO, d / "speech.wav")
    shutil.copy(DEMO_AUDIO, d / "new_speech.wav")
    # the "film" to dub: the demo face talking, small so the dub stays quick
    th.generate(DEMO_FACE, DEMO_AUDIO, d / "film.mp4", size=256, seed=1)
    return d


@pytest.mark.slow
@pytest.mark.parametrize("where, code", BLOCKS, ids=[where for where, _ in BLOCKS])
def test_python_example_runs(where: str, code: str, example_dir: Path) -> None:
    existing = {p.name for p in example_dir.iterdir()}
    # a fresh interpreter in the example folder, as a user would run it; this checkout's package first
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    run = subprocess.run(
        [sys.executable, "-c", code], cwd=example_dir, env=env, capture_output=True, text=True, check=False
    )
    assert run.returncode == 0, f"{where} failed:\n{run.stderr[-3000:]}"
    # every .mp4 the block names that did not exist before it ran is an output: it must now be there
    for name in set(re.findall(r"[\"']([\w.-]+\.mp4)[\"']", code)) - existing:
        p = example_dir / name
        assert p.exists() and p.stat().st_size > 1000, f"{where} did not write {name}"
