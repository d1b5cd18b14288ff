"""The benchmark, the load test and their data (bench/README.md); no part of the app.

A package so the scripts share bench/harness.py and the tests can import bench.seed.
"""
