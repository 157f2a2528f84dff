import gc

import torch

# Every model and trainer the previous lesson left, exercises included (a trainer holds its model and optimizer)
for name in [n for n, v in globals().items() if isinstance(v, torch.nn.Module) or type(v).__name__.endswith("Trainer")]:
    del globals()[name]
gc.collect()
if torch.cuda.is_available():
    torch.cuda.empty_cache()
