"""The course's training recipe in one place, for helpers.train (the catch-up of notebooks 05 to 08) and the
``course`` command; a test checks that the notebooks' literals match it. The 8B recipe is Unsloth's Alpaca recipe.

    >>> Recipe().max_steps, Recipe.for_model("unsloth/llama-3-8b-bnb-4bit").learning_rate
    (60, 0.0002)
"""

from dataclasses import dataclass, field, replace

from helpers.models import family

TARGET_MODULES = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
TINY = {"max_steps": 100, "learning_rate": 5e-3}  # the tiny model's changes to the recipe
# SmolLM2-135M-Instruct, the CPU default: at 2e-4 it stays below the commonest-answer floor; 48 steps at 2e-3
# train it in under 3 minutes on 2 cores (docs/validation.md)
SMOLLM2 = {"max_steps": 48, "learning_rate": 2e-3}
# notebook 07 on SmolLM2-135M-Instruct: the Instruct model already writes ChatML, so each of its two runs takes a third of the steps
SMOLLM2_CHAT = {"max_steps": 16, "learning_rate": 2e-3}


@dataclass(frozen=True)
class Recipe:
    """LoRA and SFT settings: the keyword arguments of get_peft_model and SFTConfig in notebooks 02 and 04."""

    max_seq_length: int = 2048
    r: int = 16
    lora_alpha: int = 16
    lora_dropout: float = 0.0
    target_modules: list[str] = field(default_factory=lambda: list(TARGET_MODULES))
    use_dora: bool = False
    use_gradient_checkpointing: str | bool = "unsloth"
    # 8 examples per step in one forward pass (Unsloth's notebooks: 2 x 4). The course's rows are short: on an H100
    # 8 x 1 trained them 2.59x faster for 0.1 GiB more; on a 2-core CPU about as fast (docs/validation.md).
    # Long rows: 2 x 4 (the memory of a pass grows with examples x length).
    per_device_train_batch_size: int = 8
    gradient_accumulation_steps: int = 1
    warmup_steps: int = 5
    max_steps: int = 60
    learning_rate: float = 2e-4
    optim: str = "adamw_8bit"
    # the official notebook's weight decay since unslothai/notebooks 2447ccec (2025-10-30)
    weight_decay: float = 0.001
    lr_scheduler_type: str = "linear"
    seed: int = 3407
    save_steps: int = 20  # checkpoint every N steps, so an interrupted run can resume
    packing: bool = False
    # no pad tokens in a batch (GPU); Unsloth's CPU backend keeps padded batches
    padding_free: bool = True
    report_to: str = "none"

    @classmethod
    def for_model(cls, model_name: str) -> "Recipe":
        """The recipe for ``model_name``: the tiny model's and SmolLM2's own steps and learning rate, else Unsloth's."""
        return replace(cls(), **{"tiny": TINY, "smollm2": SMOLLM2}.get(family(model_name), {}))
