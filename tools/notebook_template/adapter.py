from helpers.models import choose_model
from helpers.paths import adapter_dir
from helpers.train import saved_adapter, train_adapter

model_name = choose_model(COURSE_MODEL)
adapter = saved_adapter(adapter_dir(), model_name)  # None when it is missing or from another base model
if adapter is None:
    adapter = train_adapter(model_name, out=adapter_dir())
