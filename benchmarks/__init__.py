"""crmkit's benchmarks: crmkit against its peers on the same work. Run ``python -m benchmarks --help``."""
