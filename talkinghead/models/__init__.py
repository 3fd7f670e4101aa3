"""torch nn.Modules only: no I/O, no OpenCV, no config files."""
