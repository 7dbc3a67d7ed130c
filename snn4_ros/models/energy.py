"""Energy estimates, only where they mean something: the spiking backbone of a model that
maps onto Loihi 2, against the same network run as a dense ANN with 8-bit and fp32 MACs.

A per-synop figure for a chip is only an estimate of *that chip running this network*, so it
is not printed for models that cannot run on it (LIF + batch norm presets: ``check_loihi``
says why). The dense baseline is given with 8-bit integer MACs beside fp32 -- the Loihi
network has 8-bit weights, so an int8 accelerator is the like-for-like comparison, and on it
the dense ANN is cheaper per operation than a synop by two orders of magnitude.

Sources: 23.6 pJ per synaptic operation -- Loihi 1, Davies et al., "Loihi: A Neuromorphic
Manycore Processor with On-Chip Learning", IEEE Micro 38(1), 2018, Table 1 (Intel has not
published a per-synop energy for Loihi 2). Per MAC at 45 nm -- Horowitz, "Computing's energy
problem (and what we can do about it)", ISSCC 2014: fp32 multiply 3.7 pJ + add 0.9 pJ =
4.6 pJ; 8-bit integer multiply 0.2 pJ + add 0.03 pJ = 0.23 pJ. Memory access, which
dominates real accelerators, is in none of these figures.
"""

from __future__ import annotations

PJ_PER_SYNOP_LOIHI = 23.6
PJ_PER_MAC_FP32 = 4.6
PJ_PER_MAC_INT8 = 0.23
SOURCES = ("Loihi 23.6 pJ/synop: Davies et al., IEEE Micro 38(1) 2018, Table 1 (Loihi 1); "
           "MACs at 45 nm: Horowitz, ISSCC 2014 (fp32 3.7+0.9 pJ, int8 0.2+0.03 pJ); "
           "spiking backbone only, memory access not included")


def loihi_mappable(model) -> tuple[bool, str]:
    """(True, "") or (False, why) -- whether the backbone runs on Loihi 2 as it is."""
    from .loihi import LoihiCompatibilityError, check_loihi
    try:
        check_loihi(model)
    except LoihiCompatibilityError as exc:
        return False, str(exc)
    return True, ""


def energy_estimate(mappable: bool, why: str, synops: float, macs: float,
                    per: str = "decision", rate_hz: float | None = None) -> dict:
    """Estimates per ``per`` (and per second at ``rate_hz``); for a model that does not map
    onto Loihi only the reason."""
    if not mappable:
        # the reasons, not check_loihi's heading ("... does not map onto Loihi 2:")
        reasons = [ln.strip() for ln in why.splitlines()[1:] if ln.strip()] if why else []
        first = reasons[0] + (f" and {len(reasons) - 1} more" if len(reasons) > 1 else "") \
            if reasons else (why.strip() or "not a Loihi profile")
        return {"applicable": False,
                "why": "no energy estimate: the model does not map onto Loihi 2 "
                       f"({first}); see the hybridnet-loihi profile"}
    out = {"applicable": True,
           f"snn_loihi_uj_per_{per}": synops * PJ_PER_SYNOP_LOIHI * 1e-6,
           f"ann_int8_uj_per_{per}": macs * PJ_PER_MAC_INT8 * 1e-6,
           f"ann_fp32_uj_per_{per}": macs * PJ_PER_MAC_FP32 * 1e-6,
           "note": "estimates: " + SOURCES}
    if rate_hz is not None:
        out.update({"snn_loihi_uj_per_s": synops * rate_hz * PJ_PER_SYNOP_LOIHI * 1e-6,
                    "ann_int8_uj_per_s": macs * rate_hz * PJ_PER_MAC_INT8 * 1e-6,
                    "ann_fp32_uj_per_s": macs * rate_hz * PJ_PER_MAC_FP32 * 1e-6})
    return out
