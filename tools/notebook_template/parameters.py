COURSE_MODEL = ""  # "", "auto", "smollm2", "tiny", or a model name / local path
USE_DRIVE = False  # Colab: keep the adapter and checkpoints on Google Drive, for later notebooks and runtimes
PUSH_TO_HUB = False  # upload the merged model and the GGUF files to the Hugging Face Hub (needs HF_TOKEN)
HUB_REPO = ""  # "your-name/repository-name" on the Hub
MAX_STEPS = int(os.environ.get("COURSE_MAX_STEPS", 0))  # 0: the recipe's steps; a number shortens training
CHAT_MODEL = ""  # notebook 07: "" takes the Instruct model of COURSE_MODEL; or a model name / local path
