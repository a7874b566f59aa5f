"""benchmarks/sass_report.py's arithmetic (it compiles for sm90 by hand, with Triton 3.6; not here)."""

import importlib.util
from pathlib import Path

_spec = importlib.util.spec_from_file_location(
    "sass_report", Path(__file__).resolve().parents[1] / "benchmarks" / "sass_report.py")
sass_report = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(sass_report)

SASS = """
        /*0000*/                   MOV R1, c[0x0][0x28] ;
        /*0010*/                   IADD3 R2, R2, 0x1, RZ ;
        /*0020*/                   ISETP.GE.AND P0, PT, R2, 0x8, PT ;
        /*0030*/               @!P0 BRA 0x10 ;
        /*0040*/                   LOP3.LUT R4, R4, 0x81c081c0, RZ, 0xc0, !PT ;
        /*0050*/                   HGMMA.64x16x16.F32.BF16 R24, R40, gdesc[UR8], R24 ;
        /*0060*/                   VIADD R3, R3, 0x1 ;
        /*0070*/               @!P1 BRA 0x40 ;
        /*0080*/                   BRA 0xa0 ;
        /*0090*/                   EXIT ;
"""


def test_only_loops_that_hold_an_mma_are_counted():
    # the first loop (0x10..0x30) has no MMA; the second (0x40..0x70) does: 4 instructions; the forward BRA is no loop
    assert sass_report._mma_loops(SASS) == [4]


def test_programs_per_sm_follow_the_register_allocation_unit_and_shared_memory():
    assert sass_report._programs_per_sm(168, 4, 20_000) == 3  # 168 x 32 = 21 units of 256 per warp: 12 warps
    assert sass_report._programs_per_sm(172, 4, 20_000) == 2  # 22 units: 11 warps, two programs of 4
    assert sass_report._programs_per_sm(100, 4, 20_000) == 4  # rounded up to 104 registers: 19 warps
    assert sass_report._programs_per_sm(64, 4, 100_000) == 2  # shared memory binds: 2 x (100 KB + 1 KB)
    assert sass_report._programs_per_sm(32, 1, 0) == 32  # at most 32 programs per SM
