"""Motion: speech (+ a driving video) -> `types.Motion` (mouth offsets, eyelids, head pose per frame)."""
