"""Jobs files (CSV or JSON Lines) -> validated jobs. A bad row becomes a job that fails with one sentence; only a
file that is not a jobs file at all stops the batch.

Columns: `mode` (generate | dub), `face` (generate: the photo; dub: the --face choice), `video`, `audio`,
`output` (relative to OUT_DIR), an optional free-text `id`, and any option by its CLI name with underscores
(`seed`, `still`, `lip_strength`, `blink_rate`, `fresh`, `no_watermark`, `lips_weights`, ...). Relative input
paths are relative to the jobs file's folder; an empty cell (or a JSON null) means "not given".
"""

from __future__ import annotations

import csv
import difflib
import hashlib
import json
import math
import os
import types
import typing
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

from talkinghead.config import DubOptions, GenerateOptions
from talkinghead.errors import InputError

MODES = ("generate", "dub")
_OPTIONS: dict[str, type] = {"generate": GenerateOptions, "dub": DubOptions}
# CLI names that differ from the option field they set (`fresh` is handled apart: it sets resume = not fresh)
_ALIASES = {"generate": {"blink_rate": "blinks_per_min"}, "dub": {}}
_WEIGHTS = {"generate": ("lips_weights", "motion_weights"), "dub": ("lips_weights",)}
_INPUTS = {"generate": ("face", "audio"), "dub": ("video", "audio")}
_PATH_OPTIONS = ("pose_from",)
_RESERVED = ("mode", "video", "audio", "output", "id")  # `face` is an input of generate, an option of dub
# the CLI's limits (cli.py), by option field
_RANGES: dict[str, tuple[float, float | None]] = {
    "size": (64, 4096),
    "fps": (1, 120),
    "face_index": (0, None),
    "lip_strength": (0, 3),
    "pose_scale": (0, 3),
    "blinks_per_min": (0, 60),
    "emotion_strength": (0, 2),
    "crf": (0, 51),
}


class JobsFileError(InputError):
    """The file is not a jobs file at all (unreadable, wrong format, no `mode` column, no rows)."""


@dataclass(frozen=True)
class Job:
    """One validated row, or the sentence saying why the row cannot run (`error`)."""

    row: int  # 1 = the first job in the file (a CSV header does not count)
    mode: str
    output: str  # as written in the file, relative to OUT_DIR
    path: Path | None = None  # absolute output path; None when the row is invalid
    inputs: dict[str, str] = field(default_factory=dict)  # face/video/audio -> absolute path
    options: GenerateOptions | DubOptions | None = None
    weights: dict[str, str] = field(default_factory=dict)  # lips_weights/motion_weights -> name or absolute path
    id: str = ""
    error: str | None = None
    fingerprint: str = ""  # inputs (path, size, mtime), options and weights: what a finished output was made from

    @property
    def label(self) -> str:
        return self.output or f"row {self.row}"


def load_jobs(jobs_file: str | os.PathLike[str], out_dir: str | os.PathLike[str]) -> list[Job]:
    """Every row of `jobs_file` as a Job (invalid rows carry their error). JobsFileError if it is not a jobs file."""
    path = Path(jobs_file)
    if not path.is_file():
        raise JobsFileError(
            f"The jobs file '{path}' does not exist."
            if not path.exists()
            else f"The jobs file '{path}' is a folder, not a file."
        )
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".jsonl", ".ndjson"):
        raise JobsFileError(f"The jobs file '{path}' must be a .csv or .jsonl file, not '{path.suffix or path.name}'.")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise JobsFileError(f"The jobs file '{path}' is not a UTF-8 text file.") from None
    except OSError as exc:
        raise JobsFileError(f"The jobs file '{path}' cannot be read ({exc.strerror}).") from None
    rows = _csv_rows(path, text) if suffix == ".csv" else _jsonl_rows(path, text)
    if not rows:
        raise JobsFileError(f"The jobs file '{path}' holds no jobs.")
    base, out = path.resolve().parent, Path(out_dir).resolve()
    jobs: list[Job] = []
    owner: dict[str, int] = {}  # output -> the row that writes it
    for n, row in enumerate(rows, start=1):
        job = parse_row(n, row, base, out) if isinstance(row, dict) else Job(n, "", "", error=f"Row {n}: {row}")
        if job.error is None:
            key = os.path.normcase(str(job.path))
            if key in owner:
                job = replace(
                    job, path=None, error=f"Row {n}: the output '{job.output}' is already written by row {owner[key]}."
                )
            else:
                owner[key] = n
        jobs.append(job)
    return jobs


def _csv_rows(path: Path, text: str) -> list[dict[str, object] | str]:
    try:
        reader = csv.DictReader(text.splitlines())
        header = [(h or "").strip().lower() for h in reader.fieldnames or []]
        if "mode" not in header:
            raise JobsFileError(
                f"The jobs file '{path}' is not a jobs file: its first line must name the columns, `mode` among them."
            )
        rows: list[dict[str, object] | str] = []
        for record in reader:
            if None in record:  # more cells than the header has columns
                rows.append("it has more cells than the header has columns.")
                continue
            values = {(k or "").strip(): v for k, v in record.items()}
            if any((v or "").strip() for v in values.values()):  # blank lines are not jobs
                rows.append(dict(values))
        return rows
    except csv.Error as exc:
        raise JobsFileError(f"The jobs file '{path}' is not valid CSV ({exc}).") from None


def _jsonl_rows(path: Path, text: str) -> list[dict[str, object] | str]:
    rows: list[dict[str, object] | str] = []
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except ValueError:
            rows.append("it is not a JSON object (one job per line).")
            continue
        rows.append(value if isinstance(value, dict) else "it is not a JSON object (one job per line).")
    if rows and not any(isinstance(r, dict) for r in rows):
        raise JobsFileError(f"The jobs file '{path}' is not a jobs file: no line is a JSON object.")
    return rows


def parse_row(n: int, row: dict[str, object], base: Path, out_dir: Path) -> Job:
    """One row -> Job; the first problem found becomes the job's error (one sentence starting with the row)."""
    values = {str(k).strip().lower().replace("-", "_"): v for k, v in row.items()}
    values = {k: v for k, v in values.items() if not _blank(v)}
    mode = str(values.pop("mode", "")).strip().lower()
    output = str(values.pop("output", "")).strip()
    job_id = str(values.pop("id", "")).strip()
    base_job = Job(n, mode, output, id=job_id)
    try:
        if mode not in MODES:
            raise _RowError(f"`mode` must be generate or dub, not '{mode}'." if mode else "`mode` is empty.")
        out_path = _output_path(output, out_dir)
        inputs = {}
        for name in _INPUTS[mode]:
            if name not in values:
                raise _RowError(f"a {mode} job needs a file in the `{name}` column.")
            inputs[name] = _input_path(name, values.pop(name), base)
        other = "video" if mode == "generate" else None
        if other and other in values:
            raise _RowError("a generate job animates a `face` photo; for a `video`, use mode dub.")
        weights = {}
        for name in _WEIGHTS[mode]:
            if name in values:
                weights[name] = _weights_ref(name, values.pop(name), base)
        options = _options(mode, values, base)
    except _RowError as exc:
        return replace(base_job, error=f"Row {n}: {exc}")
    job = Job(n, mode, output, out_path, inputs, options, weights, job_id)
    return replace(job, fingerprint=fingerprint(job))


class _RowError(Exception):
    pass


def _blank(value: object) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _output_path(output: str, out_dir: Path) -> Path:
    if not output:
        raise _RowError("`output` is empty.")
    rel = Path(output)
    if rel.is_absolute() or output.startswith(("/", "\\")) or rel.drive:
        raise _RowError(f"`output` must be a path relative to the output folder, not '{output}'.")
    full = (out_dir / rel).resolve()
    if full != out_dir and out_dir not in full.parents:
        raise _RowError(f"`output` '{output}' would be written outside the output folder.")
    if full.suffix.lower() != ".mp4":
        raise _RowError(f"`output` must end in .mp4, not '{rel.name}'.")
    return full


def _input_path(name: str, value: object, base: Path) -> str:
    p = Path(os.path.expanduser(str(value).strip()))
    p = p if p.is_absolute() else base / p
    what = {"face": "face image", "audio": "audio file", "video": "video", "pose_from": "driving video"}.get(name, name)
    if not p.exists():
        raise _RowError(f"the {what} '{value}' does not exist.")
    if not p.is_file():
        raise _RowError(f"the {what} '{value}' is a folder, not a file.")
    return str(p)


def _weights_ref(name: str, value: object, base: Path) -> str:
    """A built-in name stays as is; anything that looks like a path must exist."""
    text = str(value).strip()
    if "/" not in text and "\\" not in text and not text.endswith(".safetensors"):
        return text
    return _input_path(name, text, base)


def _options(mode: str, values: dict[str, object], base: Path) -> GenerateOptions | DubOptions:
    cls = _OPTIONS[mode]
    hints = typing.get_type_hints(cls)
    kwargs: dict[str, object] = {}
    if mode == "dub" and "fresh" in values:
        kwargs["resume"] = not _coerce("fresh", values.pop("fresh"), bool)
    if "no_watermark" in values:  # --no-watermark: recorded in the label, which is always written
        if "watermark" in values:
            raise _RowError("give `no_watermark` or `watermark`, not both.")
        kwargs["watermark"] = not _coerce("no_watermark", values.pop("no_watermark"), bool)
    for key, value in values.items():
        name = _ALIASES[mode].get(key, key)
        if name not in hints:
            raise _RowError(_unknown(mode, key))
        kind, optional = _base_type(hints[name])
        parsed = (
            None
            if optional and isinstance(value, str) and value.strip().lower() in ("none", "null")
            else _coerce(key, value, kind)
        )
        if name in _PATH_OPTIONS and parsed is not None:
            parsed = _input_path(name, parsed, base)
        if parsed is not None and name in _RANGES:
            lo, hi = _RANGES[name]
            if parsed < lo or (hi is not None and parsed > hi):  # type: ignore[operator]
                bound = f"between {lo:g} and {hi:g}" if hi is not None else f"at least {lo:g}"
                raise _RowError(f"`{key}` must be {bound}, not {parsed}.")
        kwargs[name] = parsed
    return cls(**kwargs)


def _known(mode: str) -> list[str]:
    names = [f.name for f in fields(_OPTIONS[mode])] + list(_ALIASES[mode])
    extra = ["fresh", "no_watermark"] if mode == "dub" else ["no_watermark"]
    return sorted({*names, *extra, *_WEIGHTS[mode], *_INPUTS[mode], *_RESERVED})


def _unknown(mode: str, key: str) -> str:
    other = "dub" if mode == "generate" else "generate"
    if key in _known(other):
        return f"`{key}` is an option of {other} jobs, not of {mode} jobs."
    close = difflib.get_close_matches(key, _known(mode), n=1)
    hint = f" (did you mean `{close[0]}`?)" if close else ""
    return f"`{key}` is not a column of {mode} jobs{hint}."


def _base_type(hint: object) -> tuple[type, bool]:
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        return args[0], True
    return hint, False  # type: ignore[return-value]


_TRUE, _FALSE = ("true", "yes", "1", "on"), ("false", "no", "0", "off")


def _coerce(key: str, value: object, kind: type) -> object:
    """A CSV string or a JSON value -> the option's type, or a _RowError naming the column."""
    if kind is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in _TRUE + _FALSE:
            return value.strip().lower() in _TRUE
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        raise _RowError(f"`{key}` must be true or false, not '{value}'.")
    if kind is int:
        if isinstance(value, bool):
            raise _RowError(f"`{key}` must be a whole number, not '{value}'.")
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        try:
            return int(str(value).strip())
        except ValueError:
            raise _RowError(f"`{key}` must be a whole number, not '{value}'.") from None
    if kind is float:
        if isinstance(value, bool):
            raise _RowError(f"`{key}` must be a number, not '{value}'.")
        try:
            number = float(value if isinstance(value, int | float) else str(value).strip())
        except ValueError:
            raise _RowError(f"`{key}` must be a number, not '{value}'.") from None
        if not math.isfinite(number):
            raise _RowError(f"`{key}` must be a finite number, not '{value}'.")
        return number
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise _RowError(f"`{key}` must be text, not '{value}'.")
    return str(value).strip()


def _stat(path: str) -> list[object]:
    st = os.stat(path)
    return [path, st.st_size, st.st_mtime_ns]


def fingerprint(job: Job) -> str:
    """What the output is made from: mode, inputs (path, size, mtime), options (but `resume`), weights."""
    assert job.options is not None
    options = {k: v for k, v in asdict(job.options).items() if k != "resume"}
    for name in _PATH_OPTIONS:
        if options.get(name):
            options[name] = _stat(str(options[name]))
    weights = {k: (_stat(v) if os.path.isabs(v) else v) for k, v in job.weights.items()}
    data = {
        "mode": job.mode,
        "inputs": {k: _stat(v) for k, v in job.inputs.items()},
        "options": options,
        "weights": weights,
        "output": str(job.path),
    }
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]
