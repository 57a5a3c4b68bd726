"""Accuracy against ground truth: COCO keypoint AP and per-person OKS (`edgepose eval`)."""
