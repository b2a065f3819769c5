"""Design-space exploration: sweep model and hardware knobs, train, score and cost every point, draw the
Pareto fronts (``python -m nnhdl explore``)."""
