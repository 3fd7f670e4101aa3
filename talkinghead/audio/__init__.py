"""Audio: 16 kHz mono speech -> log-mel, loudness and prosody cues per video frame (numpy arrays)."""
