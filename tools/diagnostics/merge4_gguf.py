"""Notebook 08 on a GPU, its cause reproduced on the CPU: Unsloth's merged_4bit_forced runs PEFT's merge_and_unload
on the loaded model, and a GGUF export after it writes the base weights. Train a small adapter, then run Unsloth's
GPU export path (unsloth.save.unsloth_save_pretrained_gguf) with and without merge_and_unload first, up to the merged
folder it hands to llama.cpp (on a CPU it stops after writing it), and compare a layer with the base and the merge.

    python -m tools.diagnostics.merge4_gguf        # about 40 s on 2 CPU cores
"""
import dataclasses
import shutil
import tempfile
from pathlib import Path

LAYER = "model.layers.0.self_attn.q_proj.weight"


def lora_layers(model) -> int:
    return sum(name.endswith("lora_A") for name, _ in model.named_modules())


def main() -> None:
    # here, not at the top: collecting the doctests imports this module, and Unsloth patches on import
    import unsloth.save
    from safetensors.torch import load_file
    from unsloth import FastLanguageModel

    from helpers.models import choose_model
    from helpers.tiny import carry_sentencepiece_model
    from tools.recipe import Recipe
    from tools.train import train_adapter

    name = choose_model("tiny")
    work = Path(tempfile.mkdtemp(prefix="merge4-"))
    recipe = dataclasses.replace(Recipe.for_model(name), max_steps=30, save_steps=10**6)
    adapter = train_adapter(name, out=work / "lora_adapter", recipe=recipe, resume=False)
    base = load_file(Path(name) / "model.safetensors")[LAYER].float()
    model, tokenizer = FastLanguageModel.from_pretrained(str(adapter), max_seq_length=2048, dtype=None, load_in_4bit=True)
    model.save_pretrained_merged(str(work / "merged"), tokenizer, save_method="merged_16bit")
    merged = load_file(work / "merged" / "model.safetensors")[LAYER].float()
    print(f"the adapter moves {LAYER} by up to {(merged - base).abs().max():.4f}")
    for unload in (False, True):
        model, tokenizer = FastLanguageModel.from_pretrained(str(adapter), max_seq_length=2048, dtype=None, load_in_4bit=True)
        carry_sentencepiece_model(tokenizer, name)
        if unload:
            model.merge_and_unload()  # what save_method="merged_4bit_forced" does to the model
        out = work / f"gguf-{'after-merge-and-unload' if unload else 'plain'}"
        try:
            unsloth.save.unsloth_save_pretrained_gguf(model, str(out), tokenizer, quantization_method=["q8_0"])
        except Exception as err:  # on a CPU the GPU path stops after the merged folder is written
            print(f"  (the GPU export path stopped: {type(err).__name__}: {str(err)[:80]})")
        exported = load_file(out / "model.safetensors")[LAYER].float()
        print(f"merge_and_unload first: {unload}; LoRA layers {lora_layers(model)}; exported layer vs base "
              f"{(exported - base).abs().max():.4f}, vs the merge {(exported - merged).abs().max():.4f}")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
