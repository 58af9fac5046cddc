/* Reset entry of the rv32 engine's firmware (address 0, also where a trap restarts the
 * core): stack at the top of the SPRAM, the variables (.bss, in SPRAM) cleared, then main. */
    .section .text.start
    .global _start
_start:
    la sp, __stack_top
    la t0, __bss_start
    la t1, __bss_end
1:  bgeu t0, t1, 2f
    sw zero, 0(t0)
    addi t0, t0, 4
    j 1b
2:  call main
3:  j 3b
