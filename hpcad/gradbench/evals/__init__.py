"""One module per GradBench eval; each names its functions with `protocol.evaluation`."""
