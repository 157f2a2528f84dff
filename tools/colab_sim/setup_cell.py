import os, subprocess, sys

REPO_URL = "https://github.com/unsloth-course/unsloth-course"
if "google.colab" in sys.modules:  # Colab: fetch the course and install its pinned stack (requirements-colab.txt) once
    COURSE_DIR = os.environ.get("COURSE_DIR", "/content/course")
    if not os.path.isdir(COURSE_DIR):
        subprocess.run(["git", "clone", "-q", "--depth", "1", os.environ.get("COURSE_REPO_URL", REPO_URL), COURSE_DIR],
                       check=True)
    install = subprocess.run([sys.executable, f"{COURSE_DIR}/helpers/install.py"], capture_output=True, text=True)
    print(install.stdout + install.stderr)
    if install.returncode:
        raise RuntimeError("The install failed: see the message above.")
    sys.path.insert(0, COURSE_DIR)
else:  # a clone of the course: notebooks/ sits beside helpers/
    sys.path.insert(0, os.path.abspath(".."))
