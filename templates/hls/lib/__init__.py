"""Package data: hls/lib of the HLS templates."""
