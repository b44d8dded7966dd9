"""Goal-conditioned mazes simulated with MuJoCo MJX."""
