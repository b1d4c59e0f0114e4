"""Benchmark harness (``make bench``): times every asset at three scales against a naive reference.

Belongs here: building benchmark inputs, running the pipeline in fresh subprocesses, the naive notebook-style
reference, and writing ``BENCHMARKS.md``. Not tests: nothing here asserts timings.
"""
