"""Work spread past one process: Ray actor pools for `run --ray` and `eval --ray`."""
