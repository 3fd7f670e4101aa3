"""Provenance: label in the metadata, signed C2PA manifest, invisible watermark, `talkinghead verify`."""

from __future__ import annotations

import json
import os
import shutil
import stat

import av
import cv2
import numpy as np
import pytest
from clips import reencode
from conftest import CORPUS
from typer.testing import CliRunner

from talkinghead.cli import app
from talkinghead.dubbing import dub
from talkinghead.media import VideoWriter
from talkinghead.pipeline import generate
from talkinghead.provenance import manifest, watermark
from talkinghead.provenance.label import read_label

needs_c2pa = pytest.mark.skipif(not manifest.available(), reason="c2pa-python not installed ([provenance] extra)")


@pytest.fixture(scope="module")
def config_home(tmp_path_factory):
    """The local signing key goes to a temporary config folder, never the user's."""
    mp = pytest.MonkeyPatch()
    home = tmp_path_factory.mktemp("config")
    mp.setenv("XDG_CONFIG_HOME", str(home))
    mp.delenv("TALKINGHEAD_C2PA_CERT", raising=False)
    mp.delenv("TALKINGHEAD_C2PA_KEY", raising=False)
    yield home
    mp.undo()


@pytest.fixture(scope="module")
def clips(animator, demo_face, config_home, tmp_path_factory):
    """A 3 s clip at 512 px rendered twice with the same seed: marked, and with the watermark off."""
    from speech import write_wav

    folder = tmp_path_factory.mktemp("prov")
    rng = np.random.default_rng(0)
    audio = folder / "noise.wav"
    write_wav(audio, (0.2 * rng.standard_normal(3 * 16000)).astype(np.float32), 16000)
    marked = generate(demo_face, audio, folder / "marked.mp4", animator=animator, size=512, seed=3)
    plain = generate(demo_face, audio, folder / "plain.mp4", animator=animator, size=512, seed=3, watermark=False)
    return {"marked": marked, "plain": plain, "audio": audio, "folder": folder}


def test_label_in_metadata(clips):
    label = read_label(clips["marked"])
    assert label is not None and label["synthetic"] is True and label["mode"] == "photo"
    assert label["generator"].startswith("talkinghead ") and label["watermark"] is True
    assert len(label["job_id"]) == 6 and label["created"].endswith("Z")
    with av.open(os.fspath(clips["marked"])) as c:
        assert "AI-generated" in c.metadata.get("comment", "")
    assert read_label(clips["plain"])["watermark"] is False  # turning the watermark off is recorded


@needs_c2pa
def test_manifest_valid_self_signed_and_tamper_detected(clips, config_home, tmp_path):
    m = manifest.read_manifest(clips["marked"])
    assert m["status"] == "valid" and m["self_signed"] is True and m["signer"]
    assert m["digital_source_type"].endswith("/trainedAlgorithmicMedia")
    key = config_home / "talkinghead" / "c2pa" / "signer_key.pem"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    data = bytearray(clips["marked"].read_bytes())
    i = data.find(b"mdat")
    assert i > 0
    for k in range(i + 200, i + 210):
        data[k] ^= 0xFF
    tampered = tmp_path / "tampered.mp4"
    tampered.write_bytes(bytes(data))
    assert manifest.read_manifest(tampered)["status"] == "tampered"
    assert manifest.read_manifest(reencode(clips["marked"], tmp_path / "re.mp4", 20))["status"] == "absent"


def test_watermark_survives_reencode_and_downscale(clips, tmp_path):
    job = read_label(clips["marked"])["job_id"]
    d = watermark.detect(clips["marked"])
    assert d.found and d.crc_ok and d.payload == job, d
    for name, crf, scale in [("crf28", 28, 1.0), ("half", 23, 0.5)]:
        d = watermark.detect(reencode(clips["marked"], tmp_path / f"{name}.mp4", crf, scale))
        assert d.found and d.confidence > 1 - 1e-6, f"{name}: {d}"  # at 512 px the job id may not survive these
        assert abs(d.period / watermark.TILE - scale) < 0.01, f"{name}: scale found {d.period / watermark.TILE}"


def test_watermark_is_invisible(animator, demo_face, clips):
    """The mark alone (lossless renders, same seed, with and without it) keeps PSNR >= 42 dB over RGB."""
    one_s = clips["folder"] / "one_s.wav"
    from speech import write_wav

    write_wav(one_s, (0.2 * np.random.default_rng(1).standard_normal(16000)).astype(np.float32), 16000)
    a = generate(demo_face, one_s, clips["folder"] / "l_marked.mp4", animator=animator, size=512, crf=0)
    b = generate(demo_face, one_s, clips["folder"] / "l_plain.mp4", animator=animator, size=512, crf=0, watermark=False)
    se = n = 0.0
    with av.open(os.fspath(a)) as ca, av.open(os.fspath(b)) as cb:
        for fa, fb in zip(ca.decode(video=0), cb.decode(video=0)):
            d = fa.to_ndarray(format="rgb24").astype(np.float32) - fb.to_ndarray(format="rgb24").astype(np.float32)
            se, n = se + float(np.sum(d * d)), n + d.size
    psnr = 10 * np.log10(255**2 / (se / n))
    assert 42.0 <= psnr < 60.0, psnr


def test_no_watermark_not_found(clips):
    d = watermark.detect(clips["plain"])
    assert not d.found and d.payload is None and d.sync_z < d.threshold_z


def test_real_clip_not_marked():
    videos = sorted((CORPUS / "talking" / "val").glob("*.mp4"))
    if not videos:
        pytest.skip(f"the real corpus is not at {CORPUS}")
    for v in videos[:: max(1, len(videos) // 3)][:3]:
        d = watermark.detect(v)
        assert not d.found, f"{v.name}: {d}"


@needs_c2pa
def test_dub_is_marked_with_its_source_as_ingredient(clips, tmp_path):
    report = dub(clips["plain"], clips["audio"], tmp_path / "dubbed.mp4")
    label = read_label(report.path)
    assert label["mode"] == "dub" and label["watermark"] is True
    m = manifest.read_manifest(report.path)
    assert m["status"] == "valid" and m["ingredients"] == ["plain.mp4"]
    assert m["talkinghead"]["source_sha256"] == manifest.file_sha256(clips["plain"])
    d = watermark.detect(report.path)
    assert d.found and d.payload == label["job_id"]


def test_verify_command_exit_codes(clips, tmp_path):
    runner = CliRunner()
    r = runner.invoke(app, ["verify", str(clips["marked"]), "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    assert out["marked"] and out["watermark"]["found"] and out["label"]["mode"] == "photo"
    assert set(out["manifest"]) >= {"status", "signer", "self_signed"}
    bare = tmp_path / "bare.mp4"
    with VideoWriter(bare, 64, 64, fps=25) as w:  # no provenance hooks: an ordinary video
        for k in range(25):
            w.write(np.full((64, 64, 3), 8 * k, np.uint8))
    r = runner.invoke(app, ["verify", str(bare), "--json"])
    assert r.exit_code == 2, r.output
    assert json.loads(r.output)["manifest"]["status"] in ("absent", "unavailable")
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"not a video at all" * 10)
    assert runner.invoke(app, ["verify", str(junk)]).exit_code == 1


def test_local_key_is_reused(config_home):
    from talkinghead.provenance.signer import credentials

    a, b = credentials(), credentials()
    assert a.self_signed and a.key == b.key


def test_operator_credentials_from_env(config_home, tmp_path, monkeypatch):
    from talkinghead.errors import TalkingHeadError
    from talkinghead.provenance.signer import credentials

    local = config_home / "talkinghead" / "c2pa"
    credentials()
    shutil.copy(local / "signer_chain.pem", tmp_path / "chain.pem")
    shutil.copy(local / "signer_key.pem", tmp_path / "key.pem")
    monkeypatch.setenv("TALKINGHEAD_C2PA_CERT", str(tmp_path / "chain.pem"))
    with pytest.raises(TalkingHeadError, match="both"):
        credentials()
    monkeypatch.setenv("TALKINGHEAD_C2PA_KEY", str(tmp_path / "key.pem"))
    c = credentials()
    assert not c.self_signed and c.key == (tmp_path / "key.pem").read_bytes()


def test_without_c2pa_label_and_watermark_still_work(tmp_path, monkeypatch):
    """The manifest is an optional extra: without it the output is still labelled and watermarked."""
    import talkinghead.provenance.stamp as stamp_mod
    from talkinghead.provenance.stamp import Stamp
    from talkinghead.provenance.verify import verify

    monkeypatch.setattr(stamp_mod, "available", lambda: False)
    monkeypatch.setattr(manifest, "available", lambda: False)
    stamp = Stamp.new("photo", True, [], {"seed": 1}, (448, 448))
    out = tmp_path / "noc2pa.mp4"
    rng = np.random.default_rng(0)
    frame = cv2.GaussianBlur(rng.integers(0, 255, (448, 448, 3), dtype=np.uint8), (0, 0), 2)
    with VideoWriter(out, 448, 448, fps=25, **stamp.writer_args(448, 448)) as w:
        for _ in range(25):
            w.write(frame)
    result = verify(out)
    assert result.marked and result.manifest["status"] == "unavailable"
    assert result.label is not None and result.label["job_id"] == stamp.label.job_id
    assert result.watermark and result.watermark["found"] and result.watermark["payload"] == stamp.label.job_id


def test_small_outputs_are_labelled_without_a_watermark():
    """Below MIN_WATERMARK_SIDE the mark would not always survive a re-encode or a downscale: the label says off."""
    from talkinghead.provenance.stamp import MIN_WATERMARK_SIDE, Stamp

    small = Stamp.new("photo", True, [], {}, (MIN_WATERMARK_SIDE - 2, 720))
    assert not small.label.watermark and small.segment_args(MIN_WATERMARK_SIDE - 2, 720)["mark"] is None
    assert Stamp.new("photo", True, [], {}, (MIN_WATERMARK_SIDE, 720)).label.watermark
