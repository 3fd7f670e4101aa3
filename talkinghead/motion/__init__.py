"""Motion: AudioFeatures (+ driving FaceTrack) -> MotionSeq."""
