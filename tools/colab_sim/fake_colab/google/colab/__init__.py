"""colab-sim's stand-in for Colab's `google.colab` (tools/colab_sim): importable, so code that checks
`"google.colab" in sys.modules` takes its Colab branch; drive and userdata behave as on a Colab runtime
where Drive is not mounted and no secret is shared with the notebook."""

from google.colab import _message, drive, errors, userdata  # noqa: F401

__version__ = "0.0.0-colab-sim"
