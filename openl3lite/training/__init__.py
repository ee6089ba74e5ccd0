"""Training L3-Net from unlabelled video: prepare data -> sample pairs -> train -> export."""
