COURSE_MODEL = ""  # "", "auto", "tiny", or a model name / local path
USE_DRIVE = False  # Colab: keep the adapter and checkpoints on Google Drive, for later notebooks and runtimes
