"""Running cells: resolving tasks and cells, the pre-flight, few-shot support, answering, the evaluator and sweeps."""
