"""The CPU description that the demo and the benchmarks attach to their timings."""

import json
import os
import platform

import pytest
from maskrcnn_native._machine import describe_machine, machine_info

ZEN3 = """processor\t: 0
vendor_id\t: AuthenticAMD
cpu family\t: 25
model\t\t: 1
model name\t: AMD EPYC 7B13 64-Core Processor
flags\t\t: fpu sse sse2 avx fma avx2 bmi2 sha_ni

processor\t: 1
vendor_id\t: AuthenticAMD
cpu family\t: 99
model\t\t: 99
model name\t: not the first processor
flags\t\t: avx512f
"""

XEON = """processor\t: 0
cpu family\t: 6
model\t\t: 167
model name\t: Intel(R) Xeon(R) Processor
flags\t\t: avx2 fma avx512f avx512_bf16 amx_bf16 amx_tile avx512_fp16
"""


def test_first_processor_fields_and_simd_flags():
    i = machine_info(ZEN3)
    assert (i["cpu"], i["cpu_family"], i["cpu_model"]) == ("AMD EPYC 7B13 64-Core Processor", 25, 1)
    assert i["simd"] == ["avx2", "fma"]  # the second processor's avx512f is not read
    assert machine_info(XEON)["simd"] == ["avx2", "fma", "avx512f", "avx512_bf16", "avx512_fp16", "amx_tile", "amx_bf16"]
    json.dumps(i)  # goes into metrics.json as is


def test_description_names_family_model_flags_and_threads():
    d = describe_machine(machine_info(ZEN3))
    assert d.startswith("AMD EPYC 7B13 64-Core Processor (family 25, model 1; avx2 fma;")
    assert "threads of" in d and "kernels" in d


def test_held_isa_and_unknown_cpu(monkeypatch):
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    i = machine_info("")  # no /proc/cpuinfo (another OS): still a name, no family
    assert i["cpu_family"] is None and i["cpu"] and i["simd"] == []
    d = describe_machine(i)
    assert "oneDNN held to AVX2" in d and "no AVX2" in d and "family" not in d


def test_this_machine():
    i = machine_info()
    assert i["threads"] >= 1 and i["logical_cpus"] >= 1
    assert isinstance(i["torch_cpu_capability"], str) and i["torch_cpu_capability"]


@pytest.mark.skipif(
    platform.machine() not in ("x86_64", "AMD64") or not os.path.exists("/proc/cpuinfo") or "QEMU_CPU" in os.environ,
    reason="CPUID vs /proc/cpuinfo: x86 Linux, not under QEMU (whose /proc/cpuinfo is the host's)",
)
def test_cpuid_agrees_with_proc_cpuinfo():
    from maskrcnn_native import _C

    cpuid = _C._cpu_features()
    with open("/proc/cpuinfo") as f:
        proc = machine_info(f.read())
    assert (cpuid["family"], cpuid["model"]) == (proc["cpu_family"], proc["cpu_model"])
    for flag in ("fma", "avx2", "avx512f", "avx512_bf16", "amx_tile"):
        assert cpuid[flag] == (flag in proc["simd"]), flag
    assert machine_info()["simd"] == proc["simd"]
