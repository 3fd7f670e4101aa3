"""The field's metrics on any video file."""
