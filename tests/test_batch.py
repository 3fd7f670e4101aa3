"""`talkinghead batch`: jobs files, a failing job among good ones, resume, models loaded once per worker, Ray."""

from __future__ import annotations

import csv
import importlib.util
import json
import re
import shutil
from pathlib import Path

import pytest
from speech import write_wav
from typer.testing import CliRunner

from talkinghead.batch import JobsFileError, load_jobs, run_batch
from talkinghead.batch.worker import JobResult, Worker
from talkinghead.cli import app
from talkinghead.config import DubOptions, GenerateOptions


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> Path:
    """A folder with the demo face, 1 s of the demo speech, a 'photo' that is not an image, and a dummy video."""
    from talkinghead.media import load_audio
    from talkinghead.pipeline import DEMO_AUDIO, DEMO_FACE

    d = tmp_path_factory.mktemp("inputs")
    shutil.copy(DEMO_FACE, d / "face.jpg")
    speech = load_audio(DEMO_AUDIO, sample_rate=16000).samples
    write_wav(d / "one.wav", speech[:16000], 16000)
    (d / "bad.jpg").write_text("this is not a photo\n")
    (d / "film.mp4").write_bytes(b"\0")  # exists: enough for parsing tests
    return d


def write_csv(path: Path, rows: list[dict]) -> Path:
    keys = list(dict.fromkeys(k for r in rows for k in r))
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, keys)
        w.writeheader()
        w.writerows(rows)
    return path


def read_report(out: Path) -> dict[str, dict]:
    data = json.loads((out / "report.json").read_text())
    with open(out / "report.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["status"] for r in rows] == [j["status"] for j in data["jobs"]]
    return {j["output"]: j for j in data["jobs"]}


# ------------------------------------------------------------------------------------------------ parsing


def test_csv_values_get_their_option_types_and_paths_resolve_from_the_jobs_folder(inputs, tmp_path, monkeypatch):
    jobs_file = write_csv(
        inputs / "typed.csv",
        [
            {
                "mode": "generate",
                "face": "face.jpg",
                "audio": "one.wav",
                "output": "a/x.mp4",
                "seed": "7",
                "still": "yes",
                "size": "256",
                "lip_strength": "0.5",
                "blink_rate": "5",
                "loop": "",
                "id": "first",
            },
            {
                "mode": "dub",
                "video": "film.mp4",
                "audio": "one.wav",
                "output": "y.mp4",
                "face": "1",
                "loop": "freeze",
                "fresh": "true",
                "lip_strength": "2",
            },
        ],
    )
    monkeypatch.chdir(tmp_path)  # relative inputs are relative to the jobs file, not to the working directory
    gen, dub = load_jobs(jobs_file, tmp_path / "out")
    assert gen.error is None and dub.error is None
    assert gen.options == GenerateOptions(seed=7, still=True, size=256, lip_strength=0.5, blinks_per_min=5.0)
    assert gen.inputs == {"face": str(inputs / "face.jpg"), "audio": str(inputs / "one.wav")}
    assert gen.path == (tmp_path / "out" / "a" / "x.mp4").resolve() and gen.id == "first"
    assert dub.options == DubOptions(face="1", loop="freeze", resume=False, lip_strength=2.0)
    assert dub.inputs["video"] == str(inputs / "film.mp4")


def test_jsonl_values_and_fingerprint_follow_options(inputs, tmp_path):
    lines = [
        {
            "mode": "generate",
            "face": str(inputs / "face.jpg"),
            "audio": "one.wav",
            "output": "a.mp4",
            "seed": 3,
            "still": False,
            "fps": 30,
            "size": None,
        },
        {"mode": "generate", "face": "face.jpg", "audio": "one.wav", "output": "b.mp4", "seed": 4, "fps": 30},
        {"mode": "dub", "video": "film.mp4", "audio": "one.wav", "output": "c.mp4", "face": 0},
    ]
    jobs_file = inputs / "jobs.jsonl"
    jobs_file.write_text("\n".join(json.dumps(x) for x in lines) + "\n\n")
    a, b, c = load_jobs(jobs_file, tmp_path)
    assert a.options == GenerateOptions(seed=3, fps=30.0) and isinstance(a.options.fps, float)
    assert c.options == DubOptions(face="0")
    assert a.fingerprint != b.fingerprint  # different seed (and output)
    lines[1].update(seed=3, output="a.mp4")
    jobs_file.write_text(json.dumps(lines[1]) + "\n")
    assert load_jobs(jobs_file, tmp_path)[0].fingerprint == a.fingerprint  # same job, written differently


@pytest.mark.parametrize(
    "extra, message",
    [
        ({"sed": "1"}, "Row 1: `sed` is not a column of generate jobs (did you mean `seed`?)."),
        ({"loop": "freeze"}, "Row 1: `loop` is an option of dub jobs, not of generate jobs."),
        ({"seed": "abc"}, "Row 1: `seed` must be a whole number, not 'abc'."),
        ({"still": "maybe"}, "Row 1: `still` must be true or false, not 'maybe'."),
        ({"size": "10"}, "Row 1: `size` must be between 64 and 4096, not 10."),
        ({"output": "../escape.mp4"}, "Row 1: `output` '../escape.mp4' would be written outside the output folder."),
        (
            {"output": "a/../../escape.mp4"},
            "Row 1: `output` 'a/../../escape.mp4' would be written outside the output folder.",
        ),
        (
            {"output": "/tmp/abs.mp4"},
            "Row 1: `output` must be a path relative to the output folder, not '/tmp/abs.mp4'.",
        ),
        ({"output": "x.avi"}, "Row 1: `output` must end in .mp4, not 'x.avi'."),
        ({"face": "missing.jpg"}, "Row 1: the face image 'missing.jpg' does not exist."),
        ({"mode": "dance"}, "Row 1: `mode` must be generate or dub, not 'dance'."),
        ({"audio": ""}, "Row 1: a generate job needs a file in the `audio` column."),
    ],
)
def test_a_bad_row_fails_that_job_only(inputs, tmp_path, extra, message):
    good = {"mode": "generate", "face": "face.jpg", "audio": "one.wav", "output": "ok.mp4"}
    bad = {**good, "output": "bad.mp4", **extra}
    jobs = load_jobs(write_csv(inputs / "bad.csv", [bad, good]), tmp_path)
    assert jobs[0].error == message
    assert jobs[1].error is None and jobs[1].path == tmp_path.resolve() / "ok.mp4"


def test_an_inner_dotdot_that_stays_inside_is_fine_and_duplicate_outputs_are_refused(inputs, tmp_path):
    row = {"mode": "generate", "face": "face.jpg", "audio": "one.wav", "output": "a/../b.mp4"}
    first, second = load_jobs(write_csv(inputs / "dup.csv", [row, {**row, "output": "b.mp4"}]), tmp_path)
    assert first.error is None and first.path == tmp_path.resolve() / "b.mp4"
    assert second.error == "Row 2: the output 'b.mp4' is already written by row 1."


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("jobs.txt", "mode,face\n", "must be a .csv or .jsonl file"),
        ("jobs.csv", "face,audio,output\nf.jpg,a.wav,o.mp4\n", "is not a jobs file"),
        ("jobs.csv", "mode,face,audio,output\n", "holds no jobs"),
        ("jobs.jsonl", "hello\nworld\n", "is not a jobs file"),
        ("jobs.csv", b"\xff\xfe\x00\x81binary", "is not a UTF-8 text file"),
    ],
)
def test_a_file_that_is_not_a_jobs_file_is_one_sentence_and_exit_1(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(JobsFileError, match=message):
        load_jobs(path, tmp_path / "out")
    result = CliRunner().invoke(app, ["batch", str(path), "-o", str(tmp_path / "out")])
    assert result.exit_code == 1
    assert message in " ".join(result.output.split()) and "Traceback" not in result.output


# ------------------------------------------------------------------------------------------------ running


def three_jobs(inputs: Path, name: str) -> Path:
    row = {"mode": "generate", "face": "face.jpg", "audio": "one.wav", "size": "128"}
    return write_csv(
        inputs / name,
        [
            {**row, "output": "a.mp4", "seed": "1"},
            {**row, "output": "sub/b.mp4", "seed": "2", "still": "true"},
            {**row, "output": "c.mp4", "face": "bad.jpg"},
        ],
    )


@pytest.mark.slow
def test_one_worker_in_process_loads_models_once_fails_one_job_and_resumes(inputs, tmp_path, monkeypatch):
    import talkinghead.pipeline as pipeline

    made = []

    class CountingAnimator(pipeline.Animator):
        def __init__(self, *args, **kwargs):
            made.append(1)
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(pipeline, "Animator", CountingAnimator)
    jobs_file, out = three_jobs(inputs, "inline.csv"), tmp_path / "out"
    summary = run_batch(jobs_file, out, workers=1)
    report = read_report(out)
    assert [report[k]["status"] for k in ("a.mp4", "sub/b.mp4", "c.mp4")] == ["done", "done", "failed"]
    assert "bad.jpg is not an image" in report["c.mp4"]["error"]
    assert (out / "a.mp4").stat().st_size > 1000 and (out / "sub" / "b.mp4").stat().st_size > 1000
    assert not (out / "c.mp4").exists()
    assert len(made) == 1, "one worker must load its models once for all its jobs"
    assert summary.failed == 1 and not summary.interrupted
    assert all(report[k]["seconds"] > 0 and report[k]["started"] for k in report)

    # rerun: finished jobs are skipped untouched, the failed one is retried, a changed row is redone
    mtime = (out / "a.mp4").stat().st_mtime_ns
    with open(jobs_file, newline="") as f:
        rows = list(csv.DictReader(f))
    rows[1]["seed"] = "5"
    write_csv(jobs_file, rows)
    run_batch(jobs_file, out, workers=1)
    report = read_report(out)
    assert [report[k]["status"] for k in ("a.mp4", "sub/b.mp4", "c.mp4")] == ["skipped", "done", "failed"]
    assert (out / "a.mp4").stat().st_mtime_ns == mtime
    (out / "a.mp4").unlink()  # an output that disappeared is made again
    run_batch(jobs_file, out, workers=1)
    assert read_report(out)["a.mp4"]["status"] == "done" and (out / "a.mp4").is_file()

    # dub jobs: the video just made, new speech; one Dubber for both
    import talkinghead.dubbing as dubbing

    dubbers = []

    class CountingDubber(dubbing.Dubber):
        def __init__(self, *args, **kwargs):
            dubbers.append(1)
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(dubbing, "Dubber", CountingDubber)
    row = {"mode": "dub", "video": str(out / "a.mp4"), "audio": str(inputs / "one.wav")}
    dub_file = write_csv(
        tmp_path / "dub.csv", [{**row, "output": "d1.mp4"}, {**row, "output": "d2.mp4", "rest": "trim"}]
    )
    run_batch(dub_file, tmp_path / "dubs", workers=1)
    report = read_report(tmp_path / "dubs")
    for name in ("d1.mp4", "d2.mp4"):
        assert report[name]["status"] == "done", report[name]["error"]
        assert "frames dubbed" in report[name]["summary"] and (tmp_path / "dubs" / name).is_file()
    assert len(dubbers) == 1


def test_ctrl_c_leaves_a_report_with_the_unfinished_jobs_pending(inputs, tmp_path, monkeypatch):
    def run(self, job, progress=None):
        if job.row == 2:
            raise KeyboardInterrupt
        job.path.write_bytes(b"made")
        return JobResult(job.row, "done", started=1.0, seconds=0.5, worker=self.name)

    monkeypatch.setattr(Worker, "run", run)
    out = tmp_path / "out"
    summary = run_batch(three_jobs(inputs, "interrupt.csv"), out, workers=1)
    report = read_report(out)
    assert summary.interrupted
    assert [report[k]["status"] for k in ("a.mp4", "sub/b.mp4", "c.mp4")] == ["done", "pending", "pending"]
    assert "run the same command again" in report["sub/b.mp4"]["error"]
    assert json.loads((out / "report.json").read_text())["finished"]


@pytest.mark.slow
def test_two_worker_processes_through_the_cli(inputs, tmp_path):
    out = tmp_path / "out"
    result = CliRunner().invoke(
        app, ["batch", str(three_jobs(inputs, "pool.csv")), "-o", str(out), "--workers", "2", "--quiet"]
    )
    assert result.exit_code == 1, result.output  # one job failed
    report = read_report(out)
    assert [report[k]["status"] for k in ("a.mp4", "sub/b.mp4", "c.mp4")] == ["done", "done", "failed"]
    assert (out / "a.mp4").is_file() and (out / "sub" / "b.mp4").is_file()
    workers = {e["worker"] for e in report.values()}
    assert 1 <= len(workers) <= 2
    for w in workers:  # each worker process loaded its models for its first job only
        assert sum(e["loaded_models"] for e in report.values() if e["worker"] == w) == 1
    again = CliRunner().invoke(app, ["batch", str(inputs / "pool.csv"), "-o", str(out), "--quiet"])
    assert again.exit_code == 1
    assert [e["status"] for e in read_report(out).values()] == ["skipped", "skipped", "failed"]


@pytest.mark.slow
@pytest.mark.skipif(
    importlib.util.find_spec("ray") is None,
    reason="ray is not installed (pip install -e '.[ray]'); the --ray backend is untested here",
)
def test_ray_local_instance_runs_jobs_as_actors_and_reports_the_failure(inputs, tmp_path):
    import ray

    out = tmp_path / "out"
    summary = run_batch(three_jobs(inputs, "ray.csv"), out, workers=2, ray="local")
    assert not ray.is_initialized(), "the local Ray instance must be shut down"
    report = read_report(out)
    assert [report[k]["status"] for k in ("a.mp4", "sub/b.mp4", "c.mp4")] == ["done", "done", "failed"]
    assert "bad.jpg is not an image" in report["c.mp4"]["error"]
    assert (out / "a.mp4").is_file() and (out / "sub" / "b.mp4").is_file()
    assert summary.report.backend == "ray:local"


def test_ray_flag_alone_or_with_an_address_and_clear_errors_when_ray_is_missing(inputs, tmp_path, monkeypatch):
    jobs_file = three_jobs(inputs, "noray.csv")
    monkeypatch.setitem(__import__("sys").modules, "ray", None)  # `import ray` now fails as if not installed
    for argv in (["--ray"], ["--ray", "--quiet"], ["--ray", "auto"], ["--ray=10.0.0.1:6379"]):
        result = CliRunner().invoke(app, ["batch", str(jobs_file), "-o", str(tmp_path / "out"), *argv])
        assert result.exit_code == 1, (argv, result.output)
        assert "--ray needs Ray: install it with pip install 'talkinghead[ray]'." in " ".join(result.output.split())
    report = read_report(tmp_path / "out")
    assert report["a.mp4"]["status"] == "pending" and "needs Ray" in report["a.mp4"]["error"]
    assert report["c.mp4"]["status"] == "pending"  # nothing ran


@pytest.mark.skipif(importlib.util.find_spec("ray") is None, reason="ray is not installed (pip install -e '.[ray]')")
def test_an_unreachable_ray_cluster_is_one_sentence_in_seconds(inputs, tmp_path):
    from talkinghead.errors import TalkingHeadError

    with pytest.raises(TalkingHeadError, match=re.escape("Cannot reach the Ray cluster at '127.0.0.1:1': ")):
        run_batch(three_jobs(inputs, "unreachable.csv"), tmp_path / "out", ray="127.0.0.1:1")


def test_a_worker_process_is_set_up_like_the_command_line(monkeypatch):
    """A batch worker process tunes the allocator as `dub` and `generate` do (media/heap.py): measured on a
    30 s 1080p dub in a worker, peak memory 857-883 MB without it, 740-746 MB with it."""
    import cv2
    import torch

    import talkinghead.media.heap as heap
    from talkinghead.batch.worker import limit_threads

    calls: list[int] = []
    monkeypatch.setattr(heap, "tune_allocator", lambda: calls.append(1) or True)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        monkeypatch.delenv(var, raising=False)  # restored after the test
    threads, cv_threads = torch.get_num_threads(), cv2.getNumThreads()
    try:
        limit_threads(threads)
    finally:
        torch.set_num_threads(threads)
        cv2.setNumThreads(cv_threads)
    assert calls == [1]
