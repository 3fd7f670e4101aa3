"""Audio: Waveform -> AudioFeatures."""
