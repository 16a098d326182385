"""`python -m hpcad.gradbench`: the GradBench tool, reading messages on stdin."""
from hpcad.gradbench.protocol import serve

if __name__ == "__main__":
    serve()
