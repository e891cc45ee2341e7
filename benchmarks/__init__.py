"""Speed and scale measurements, run by hand (`make bench`); results go in docs/benchmarks.md."""
