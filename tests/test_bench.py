"""The benchmark script runs end to end at a tiny size on a CPU (GPU figures live in docs/benchmarks.md)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tools import bench

pytestmark = pytest.mark.slow  # make test-fast leaves these out

ROOT = Path(__file__).resolve().parent.parent


def test_flops_formula_for_llama3_8b():
    arch = bench.ARCH["8b"]
    non_embedding = 32 * (2 * 4096 * 4096 + 2 * 4096 * 1024 + 3 * 4096 * 14336)
    assert non_embedding == 6_979_321_856
    # LoRA on a frozen base (the benchmark): no weight gradients for the base, full cost for the adapters
    assert (
        bench.flops_per_token(arch, 2048)
        == 4 * non_embedding + 6 * 41_943_040 + 12 * 32 * 4096 * 2048
    )
    assert (
        bench.flops_per_token(arch, 2048, lora_r=None) == 6 * non_embedding + 12 * 32 * 4096 * 2048
    )
    # with checkpointing the GPU runs one more forward pass: 2 FLOPs per weight and adapter weight, 4 L H S
    assert (
        bench.flops_per_token(arch, 2048, recompute=True) - bench.flops_per_token(arch, 2048)
        == 2 * non_embedding + 2 * 41_943_040 + 4 * 32 * 4096 * 2048
    )


def test_peak_lookup():
    assert bench.peak_tflops("NVIDIA H100 80GB HBM3") == 989.4
    assert bench.peak_tflops("Tesla T4") == 65.0
    assert bench.peak_tflops(None) is None


def test_report_states_ratios_and_failures():
    cfg = bench.BenchConfig(size="tiny")
    row = dict(
        seconds_per_step=1.0, mfu=None, generate_tokens_per_s=10.0, load_seconds=1.0, gpu=None
    )
    text = bench.report(
        cfg,
        [
            dict(path="unsloth", train_tokens_per_s=300.0, peak_reserved_gib=3.0, **row),
            dict(path="hf", train_tokens_per_s=100.0, peak_reserved_gib=6.0, **row),
        ],
    )
    assert "training speed 3.00x" in text and "peak reserved memory 0.50x" in text
    failed = bench.report(cfg, [dict(path="hf", error="exit code 1")])
    assert "failed: exit code 1" in failed


def test_sweep_items_and_ratios():
    assert bench.parse_config("4x2:unsloth") == {
        "batch": 4,
        "grad_accum": 2,
        "gradient_checkpointing": "unsloth",
    }
    assert bench.parse_config("8x1:false") == {
        "batch": 8,
        "grad_accum": 1,
        "gradient_checkpointing": "false",
    }
    assert bench.parse_config("2") == {
        "batch": 2,
        "grad_accum": 1,
        "gradient_checkpointing": "unsloth",
    }
    a = {
        "path": "unsloth",
        "train_tokens_per_s": 200.0,
        "generate_tokens_per_s": 30.0,
        "peak_reserved_gib": 6.0,
        "generate_batch32_tokens_per_s": 900.0,
    }
    b = {
        "path": "hf",
        "train_tokens_per_s": 100.0,
        "generate_tokens_per_s": 10.0,
        "peak_reserved_gib": 12.0,
        "generate_batch32_tokens_per_s": 300.0,
    }
    assert bench.ratios([a, b]) == {
        "training speed": 2.0,
        "generation speed": 3.0,
        "batched generation speed": 3.0,
        "peak reserved memory": 0.5,
    }
    assert bench.ratios([a, {"path": "hf", "error": "exit code 1"}]) == {}


def test_decode_bound_is_bandwidth_over_the_4bit_weights():
    from helpers.memory import llama_weight_memory

    bound = bench.decode_bound(bench.ARCH["8b"], "NVIDIA H100 80GB HBM3")
    assert bound == pytest.approx(3.35e12 / llama_weight_memory(bench.ARCH["8b"]).bytes_4bit)
    assert 550 < bound < 620 and bench.decode_bound(bench.ARCH["8b"], "some other GPU") is None


def test_token_counter_counts_rows_in_order():
    counter = bench.TokenCounter(lambda features: len(features))
    assert counter([{"input_ids": [1, 2, 3]}, {"input_ids": [4]}]) == 2
    counter([{"input_ids": [5] * 10}])
    assert counter.rows(1, 1) == [10] and counter.rows(0, 2) == [3, 1, 10]
    with pytest.raises(RuntimeError, match="saw 2 micro-batches, 3 needed"):
        counter.rows(1, 2)


def test_tiny_benchmark_runs_both_paths_on_the_course_rows(tmp_path):
    cmd = [
        sys.executable,
        "-m",
        "tools.bench",
        "--size",
        "tiny",
        "--data",
        "course",
        "--timed-steps",
        "2",
        "--warmup-steps",
        "1",
        "--new-tokens",
        "4",
        "--profile-step",
        "2",
        "--out",
        str(tmp_path),
    ]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    results = json.loads((tmp_path / "bench.json").read_text())["results"]
    assert [r["path"] for r in results] == ["unsloth", "hf"]  # both paths ran, timed and measured
    for r in results:
        assert (
            r["train_tokens_per_s"] > 0 and r["generate_tokens_per_s"] > 0 and r["timed_steps"] == 2
        )
    assert "Ratios a/b" in (tmp_path / "bench.md").read_text()
    # both paths trained the same rows (same seed, same order), far shorter than seq_len: counted, not assumed
    lengths = {r["mean_row_tokens"] for r in results}
    assert len(lengths) == 1 and 20 < lengths.pop() < 2048
    assert "the course's own rows" in (tmp_path / "bench.md").read_text()
    for path in ("unsloth", "hf"):  # the profiler ran over step 2 (a CPU has no GPU kernels to sum)
        assert (tmp_path / f"profile-{path}.md").read_text().startswith("One step: ")


def test_kernel_kinds_from_names():
    assert (
        bench.kernel_kind("sm90_xmma_gemm_bf16bf16_bf16f32_f32_tn_n_tilesize128x128x64")
        == "matrix multiply"
    )
    assert bench.kernel_kind("nvjet_tst_192x192_64x3_1x2_h_bz_coopA_NNT") == "matrix multiply"
    assert (
        bench.kernel_kind("flash_fwd_kernel<Flash_fwd_kernel_traits<128, 128, 64, 4>>")
        == "attention"
    )
    assert (
        bench.kernel_kind(
            "cudnn_generated_fort_native_sdpa_sm90_flash_bprop_wgmma_f16_knob_26_64x64x128"
        )
        == "attention"
    )
    assert (
        bench.kernel_kind("triton_poi_fused__to_copy_add_mul_rsub_sigmoid_2")
        == "fused (Triton: inductor, Unsloth)"
    )
    assert (
        bench.kernel_kind("void kDequantizeBlockwise<__nv_bfloat16, 512, 64, 8, 2>")
        == "4-bit dequantize"
    )
    assert bench.kernel_kind("Memcpy DtoH (Device -> Pinned)") == "memory copy"
    assert bench.kernel_kind("triton_poi_fused_add_mul_0") == "fused (Triton: inductor, Unsloth)"
    assert bench.kernel_kind("_rms_layernorm_forward") == "fused (Triton: inductor, Unsloth)"
    assert (
        bench.kernel_kind(
            "void at::native::vectorized_elementwise_kernel<4, at::native::FillFunctor<float>>"
        )
        != "matrix multiply"
    )
