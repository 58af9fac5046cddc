"""The ``rv32`` engine: a small RV32 core, its SoC, memory map and firmware."""
