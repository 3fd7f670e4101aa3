"""Render: a source image + target landmarks per frame (from `types.Motion`) -> RGB frames."""
