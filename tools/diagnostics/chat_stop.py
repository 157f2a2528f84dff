"""Notebook 07 on a GPU, emulated on the CPU: Unsloth's GPU trainer ends a chat training text at <|eot_id|> with no
<|end_of_text|> after it (TRL's own trainer, the CPU path, appends one). Train the whole-text adapter that way (TRL
told the end token is <|eot_id|>), give the tokenizer back its EOS, and score the held-out set with generation cut
at EOS only and at <|eot_id|> too.

    python -m tools.diagnostics.chat_stop          # about 30 s on 2 CPU cores
"""


def messages(r):
    return [{"role": "user", "content": r["instruction"] + (f"\n\n{r['input']}" if r["input"] else "")},
            {"role": "assistant", "content": r["output"]}]


def main() -> None:
    # here, not at the top: collecting the doctests imports this module, and Unsloth (first) patches on import
    from unsloth import FastLanguageModel  # noqa: I001
    from unsloth.chat_templates import get_chat_template
    from datasets import load_dataset
    from trl import SFTConfig, SFTTrainer

    from helpers.models import choose_model
    from helpers.paths import EVAL_FILE, TRAIN_FILE
    from helpers.scoring import answer_token_budget, generate_answers, score
    from tools.recipe import TARGET_MODULES

    model, tok = FastLanguageModel.from_pretrained(choose_model("tiny"), max_seq_length=2048, dtype=None, load_in_4bit=True)
    tok = get_chat_template(tok, chat_template="llama-3")
    eos = tok.eos_token
    data = load_dataset("json", data_files=str(TRAIN_FILE), split="train").map(
        lambda r: {"text": tok.apply_chat_template(messages(r), tokenize=False)})
    model = FastLanguageModel.get_peft_model(model, r=16, target_modules=TARGET_MODULES, lora_alpha=16, lora_dropout=0,
                                             bias="none", use_gradient_checkpointing="unsloth", random_state=3407)
    trainer = SFTTrainer(model=model, processing_class=tok, train_dataset=data, args=SFTConfig(
        dataset_text_field="text", max_length=2048, per_device_train_batch_size=2, gradient_accumulation_steps=4,
        warmup_steps=5, max_steps=100, learning_rate=5e-3, optim="adamw_8bit", weight_decay=0.001, seed=3407,
        output_dir="outputs/chat_stop", save_strategy="no", report_to="none", eos_token="<|eot_id|>", disable_tqdm=True))
    print("a training text ends with:", repr(tok.decode(trainer.train_dataset[0]["input_ids"][-3:])))
    trainer.train()
    tok.eos_token = eos  # TRL made <|eot_id|> the EOS; the notebook's tokenizer keeps <|end_of_text|>
    FastLanguageModel.for_inference(model)
    records = list(load_dataset("json", data_files=str(EVAL_FILE), split="train"))
    prompt = lambda r: tok.apply_chat_template(messages(r)[:1], tokenize=False, add_generation_prompt=True)  # noqa: E731
    for stop_at in [(), ("<|eot_id|>",)]:
        answers = generate_answers(model, tok, records, max_new_tokens=answer_token_budget(tok, records), prompt=prompt,
                                   stop_at=stop_at, progress=False)
        print(f"stop_at={list(stop_at)}: exact match {score(records, answers).overall['exact_match']:.3f}; "
              f"first answers {answers[:2]}")


if __name__ == "__main__":
    main()
