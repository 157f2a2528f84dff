import os, subprocess, sys

REPO_URL = "https://github.com/unsloth-course/unsloth-course"
HOSTED = {"colab": "/content/course", "kaggle": "/kaggle/working/course"}
host = "colab" if "google.colab" in sys.modules else "kaggle" if "KAGGLE_KERNEL_RUN_TYPE" in os.environ else None
if host:  # Colab or Kaggle: fetch the course and install the pinned stack, once per runtime
    COURSE_DIR = os.environ.get("COURSE_DIR", HOSTED[host])
    if not os.path.isdir(COURSE_DIR):
        subprocess.run(["git", "clone", "--depth", "1", os.environ.get("COURSE_REPO_URL", REPO_URL), COURSE_DIR], check=True)
    if not os.path.exists(os.path.join(COURSE_DIR, ".installed")):  # install.py writes it when all is well
        done = subprocess.run([sys.executable, os.path.join(COURSE_DIR, "helpers", "install.py")], capture_output=True, text=True)
        print(done.stdout, done.stderr)
        assert done.returncode == 0, "the install failed: read the lines above"
else:  # a clone of the course: notebooks/ sits beside helpers/
    COURSE_DIR = os.path.abspath("..")
sys.path.insert(0, COURSE_DIR)
