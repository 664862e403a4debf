"""rtm's benchmarks: ``python -m bench`` (``make bench``); figures are ratios from one run."""
