"""Render: SourceFace + MotionSeq -> frames."""
