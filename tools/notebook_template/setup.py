import os, subprocess, sys

REPO_URL = "https://github.com/unsloth-course/unsloth-course"
HOSTED = {"colab": "/content/course", "kaggle": "/kaggle/working/course"}
host = "kaggle" if "KAGGLE_KERNEL_RUN_TYPE" in os.environ else "colab" if "google.colab" in sys.modules else None
if os.path.isdir(os.path.join("..", "helpers")):  # a clone of the course: notebooks/ sits beside helpers/
    COURSE_DIR = os.path.abspath("..")
elif host:  # Colab or Kaggle: fetch the course and install the pinned stack, once per runtime
    COURSE_DIR = os.environ.get("COURSE_DIR", HOSTED[host])
    if host == "kaggle":  # Kaggle lends two T4s; a lesson uses one, as on Colab
        os.environ.setdefault("CUDA_VISIBLE_DEVICES", "0")
    if not os.path.isdir(COURSE_DIR):
        cloned = subprocess.run(["git", "clone", "--depth", "1", os.environ.get("COURSE_REPO_URL", REPO_URL), COURSE_DIR])
        assert cloned.returncode == 0, "could not fetch the course (on Kaggle: Settings > Internet on)"
    if not os.path.exists(os.path.join(COURSE_DIR, ".installed")):  # tools/install.py writes it when all is well
        done = subprocess.run([sys.executable, os.path.join(COURSE_DIR, "tools", "install.py")], capture_output=True, text=True)
        print(done.stdout, done.stderr)
        assert done.returncode == 0, "the install failed: read the lines above"
else:
    raise RuntimeError("run this notebook from a clone of the course (notebooks/ beside helpers/), on Colab or on Kaggle")
sys.path.insert(0, COURSE_DIR)
