"""Package data: hls/macros of the HLS templates."""
