"""Workstation tooling: source models -> TFLite fp32/fp16/int8 and ONNX, with parity reports.

Heavy dependencies live behind the `edgepose[convert]` extra; the runtime never imports this package.
"""
