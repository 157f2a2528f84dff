import subprocess
import sys

from helpers.models import choose_model
from helpers.paths import adapter_dir, output_dir
from helpers.save import saved_adapter

model_name = choose_model(COURSE_MODEL)
adapter = saved_adapter(adapter_dir(), model_name)  # None when it is missing or from another base model
if adapter is None:  # notebook 04's recipe, run by the course's training path in its own process
    command = [sys.executable, "-m", "helpers.train", "--model", model_name, "--output-dir", str(output_dir()),
               "--no-progress"]
    with subprocess.Popen(command, cwd=COURSE_DIR, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as run:
        for line in run.stdout:  # its output as it comes, in this cell
            print(line, end="")
    assert run.returncode == 0, f"`{' '.join(command[1:])}` failed: read the lines above"
    adapter = saved_adapter(adapter_dir(), model_name)
