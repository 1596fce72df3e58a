"""Code that runs inside the sandbox. Standard library only: it must run in any image with python3."""
