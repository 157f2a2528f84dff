import gc

import torch

for name in ("model", "base", "reloaded", "merged", "trainer", "tokenizer"):
    globals().pop(name, None)
gc.collect()
if torch.cuda.is_available():
    torch.cuda.empty_cache()
