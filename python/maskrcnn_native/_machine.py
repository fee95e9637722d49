"""The CPU a figure was measured on, named the way the project's tables name it.

The project's machines differ (an AVX2-only AMD EPYC Zen 3, AVX-512 Zen 4 and
Zen 5, an Intel Xeon with AMX) and a timing means nothing without its CPU, so
the demo records :func:`machine_info` in ``metrics.json`` and prints
:func:`describe_machine` beside its wall time; the benchmark scripts print it too.
"""

from __future__ import annotations

import os
import platform
from typing import Any, Dict, Optional

__all__ = ["machine_info", "describe_machine"]

# SIMD flags that decide which kernels run (lscpu / /proc/cpuinfo names)
_SIMD = ("avx2", "fma", "avx512f", "avx512_bf16", "avx512_fp16", "amx_tile", "amx_bf16")


def _parse_cpuinfo(text: str) -> Dict[str, str]:
    """The first processor's ``key: value`` fields of a /proc/cpuinfo text."""
    fields: Dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            if fields:
                break  # end of the first processor's block
            continue
        key, sep, value = line.partition(":")
        if sep:
            fields.setdefault(key.strip(), value.strip())
    return fields


def machine_info(cpuinfo: Optional[str] = None) -> Dict[str, Any]:
    """A JSON-able description of this process's CPU and kernels: ``cpu`` (model
    name), ``cpu_family`` / ``cpu_model`` (as lscpu prints them; None where
    neither CPUID nor /proc/cpuinfo gives them), ``simd`` (which of avx2, fma, avx512f, avx512_bf16, avx512_fp16,
    amx_tile, amx_bf16 the CPU reports), ``torch_cpu_capability`` (the ATen
    kernels torch chose, e.g. "AVX2" even on an AVX-512 CPU when
    ``ATEN_CPU_CAPABILITY=avx2``), ``onednn_max_isa`` (``ONEDNN_MAX_CPU_ISA`` when
    set), ``logical_cpus`` and ``threads`` (torch's intra-op threads).
    On x86 the CPU's own CPUID answers (what the native core dispatches on);
    /proc/cpuinfo elsewhere. ``cpuinfo``: a /proc/cpuinfo text to describe
    instead of this machine's."""
    cpuid: Dict[str, Any] = {}
    if cpuinfo is None:
        # CPUID as the native core reads it (x86): under an emulator such as QEMU's
        # CPU models /proc/cpuinfo still describes the host
        try:
            from . import _C

            cpuid = dict(_C._cpu_features())
        except Exception:  # no extension (a docs build) or no binding
            cpuid = {}
        try:
            with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
                cpuinfo = f.read()
        except OSError:
            cpuinfo = ""
    fields = _parse_cpuinfo(cpuinfo)
    flags = {f for f in _SIMD if cpuid.get(f)} if cpuid else set(fields.get("flags", "").split())

    def _int(key: str) -> Optional[int]:
        try:
            return int(fields[key])
        except (KeyError, ValueError):
            return None

    info: Dict[str, Any] = {
        "cpu": cpuid.get("brand") or fields.get("model name") or platform.processor() or platform.machine(),
        "cpu_family": cpuid.get("family", _int("cpu family")),
        "cpu_model": cpuid.get("model", _int("model")),
        "simd": [f for f in _SIMD if f in flags],
        "torch_cpu_capability": None,
        "onednn_max_isa": os.environ.get("ONEDNN_MAX_CPU_ISA") or os.environ.get("DNNL_MAX_CPU_ISA"),
        "logical_cpus": os.cpu_count(),
        "threads": None,
    }
    try:
        import torch

        info["threads"] = torch.get_num_threads()
        info["torch_cpu_capability"] = torch.backends.cpu.get_cpu_capability()
    except Exception:  # torch missing or too old for get_cpu_capability
        pass
    return info


def describe_machine(info: Optional[Dict[str, Any]] = None) -> str:
    """One line, e.g. "AMD EPYC (family 25, model 17; avx2 fma avx512f avx512_bf16;
    torch AVX512 kernels; 2 threads of 2 CPUs)"."""
    i = info if info is not None else machine_info()
    parts = []
    if i.get("cpu_family") is not None:
        parts.append(f"family {i['cpu_family']}, model {i['cpu_model']}")
    parts.append(" ".join(i.get("simd") or []) or "no AVX2")
    kernels = i.get("torch_cpu_capability")
    if kernels:
        held = f", oneDNN held to {i['onednn_max_isa']}" if i.get("onednn_max_isa") else ""
        parts.append(f"torch {kernels} kernels{held}")
    if i.get("threads") is not None:
        parts.append(f"{i['threads']} threads of {i.get('logical_cpus')} CPUs")
    return f"{i.get('cpu')} ({'; '.join(parts)})"
