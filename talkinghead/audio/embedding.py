"""Speaker-invariant speech features: Google's speech_embedding, as shipped in openwakeword 0.5.1.

The network was trained on a large multi-speaker corpus to recognise words, so its 96-d output
carries phonetic content with little of the voice — exactly what an hour of mostly one-speaker video
cannot teach our lips model. The ONNX files are read from the installed package (nothing is
downloaded); openwakeword itself is never imported, which keeps its tflite dependency out of the way.
"""

from __future__ import annotations

import functools
import importlib.util
import os

import numpy as np

from talkinghead.errors import TalkingHeadError

EMB_DIM = 96
EMB_WINDOW = 76  # mel frames (10 ms) per embedding window
EMB_HOP = 4  # mel frames between embeddings (40 ms: one per video frame at 25 fps)


@functools.lru_cache(maxsize=1)
def _sessions():
    spec = importlib.util.find_spec("openwakeword")
    if spec is None or not spec.submodule_search_locations or importlib.util.find_spec("onnxruntime") is None:
        raise TalkingHeadError(
            "The speech-embedding features need the optional packages: pip install 'talkinghead[embedding]'."
        )
    import onnxruntime as ort

    d = os.path.join(spec.submodule_search_locations[0], "resources", "models")
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = max(1, min(2, os.cpu_count() or 1))
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    make = functools.partial(ort.InferenceSession, sess_options=opts, providers=["CPUExecutionProvider"])
    return make(os.path.join(d, "melspectrogram.onnx")), make(os.path.join(d, "embedding_model.onnx"))


def speech_embedding(samples: np.ndarray, batch: int = 256) -> np.ndarray:
    """(n_mel, 96) embeddings at the 10 ms mel rate, causal: row j summarises the 0.76 s ending at j.

    Computed every EMB_HOP mel frames and held until the next one, so no row looks into the future.
    """
    mel_sess, emb_sess = _sessions()
    x = np.asarray(samples, np.float32) * 32767.0
    n_mel = int(np.ceil(len(x) / 160))
    pad = np.zeros(160 * EMB_WINDOW, np.float32)  # silence before the start so early frames have a window
    spec = mel_sess.run(None, {"input": np.concatenate([pad, x, np.zeros(480, np.float32)])[None]})[0]
    spec = np.squeeze(spec).astype(np.float32) / 10.0 + 2.0  # the package's calibration to the TF original
    # window ending at (padded) mel index e covers [e - 76, e); output row j <- e = j + 76 + 1
    ends = np.arange(EMB_WINDOW + 1, EMB_WINDOW + 1 + n_mel, EMB_HOP)
    ends = ends[ends <= len(spec)]
    out = np.zeros((len(ends), EMB_DIM), np.float32)
    for a in range(0, len(ends), batch):
        e = ends[a : a + batch]
        win = np.stack([spec[k - EMB_WINDOW : k] for k in e])[..., None]
        out[a : a + batch] = emb_sess.run(None, {"input_1": win})[0].reshape(len(e), EMB_DIM)
    rows = np.minimum(np.arange(n_mel) // EMB_HOP, max(len(out) - 1, 0))
    return out[rows] if len(out) else np.zeros((n_mel, EMB_DIM), np.float32)
