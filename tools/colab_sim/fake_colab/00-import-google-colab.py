# IPython startup file of the simulated Colab kernel: Colab's kernel has google.colab imported.
import google.colab  # noqa: F401
