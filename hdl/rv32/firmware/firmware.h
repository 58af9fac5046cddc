/* The rv32 engine's firmware: shared types, I/O access and the units' interfaces.
 *
 * chip.h is generated for each chip config by ohmflow.hdl.rv32.firmware: sizes, formats, protocol
 * constants, defaults, the address map and tables. Everything the firmware computes follows
 * docs/numerics.md; everything it sends and accepts follows docs/protocol.md. */
#ifndef OHMFLOW_FIRMWARE_H
#define OHMFLOW_FIRMWARE_H

#include "chip.h"

typedef unsigned char u8;
typedef unsigned short u16;
typedef unsigned int u32;
typedef unsigned long long u64;
typedef signed char i8;
typedef short i16;
typedef int i32;
typedef long long i64;

#define IO(reg) (*(volatile u32 *)(IO_BASE + (reg)))
#define SPRAM __attribute__((section(".spram")))

/* ----- the chip's state (numerics.c) ----- */
struct settings {
    u32 in_bits, out_bits, fwd_gain, fwd_shift, bwd_gain, bwd_shift, fwd_sigma, bwd_sigma;
    u32 bl, dw_std, seed;
    u16 shapes[TILES][2]; /* (n_in, n_out) */
};

/* per-device parameters (docs/numerics.md §7), one record of four words per device,
 * [tile][j][i] */
struct device {
    i32 ku, kd;
    i16 wmax, wmin;
    u16 su, sd;
};
_Static_assert(sizeof(struct device) == 16, "a device record is four words");

extern struct settings settings;
extern u32 nonce;
extern i16 weights[TILES][COLS][ROWS];
extern struct device devices[TILES][COLS][ROWS];
extern u64 counters[TILES][N_COUNTERS];
/* the step-shape tables (§5.4.1): mode (0 linear) and nodes, T_up then T_down */
extern u32 shape_mode;
extern u32 shape_table[2 * SHAPE_NODES];

#if HAVE_TIME
/* time and temperature (docs/numerics.md §11; physics.c): the five settings, the device key,
 * the chip time and each tile's drift age (ms) */
struct physics {
    u64 decay_rate;
    u32 drift_nu, drift_nu_dtod, decay_dtod, temperature;
};
extern struct physics physics;
extern u32 device_key;
extern u64 chip_time, ages[TILES];
void physics_reset(void);
/* ADVANCE by dt ms: ST_OK, or ST_BAD_ARGUMENT (nothing changed) past the 64-bit time */
u32 chip_advance(u32 dt);
/* the factors of T (§11.4), TEMP_FRAC bits: rnd(v * table[T - T_MIN], TEMP_FRAC) */
static inline u32 at_temperature(u32 v, const unsigned short *table)
{
    return (u32)(((u64)v * table[physics.temperature - T_MIN] + (1u << (TEMP_FRAC - 1)))
                 >> TEMP_FRAC);
}
#endif

void chip_power_up(void);
void chip_reset(void);
void chip_seed_changed(void);
void chip_forward(u32 tile, u32 b, const u8 *x, u8 *y, u8 *sat, int backward);
void chip_update(u32 tile, u32 b, const u8 *x, const u8 *d);
void chip_pulse(u32 tile, u32 axis, u32 index, const u8 *counts);

/* §6.1: C. Wellons' lowbias32 */
static inline u32 lowbias32(u32 x)
{
    x ^= x >> 16;
    x *= 0x7feb352du;
    x ^= x >> 15;
    x *= 0x846ca68bu;
    x ^= x >> 16;
    return x;
}

/* §6.3: the Irwin-Hall sum of the four bytes of r, centred: -510 .. 510 */
static inline i32 gauss(u32 r)
{
    return (i32)((r & 255) + ((r >> 8) & 255) + ((r >> 16) & 255) + (r >> 24)) - 510;
}

/* ----- little-endian fields ----- */
static inline u32 get_u(const u8 *p, u32 width)
{
    u32 v = 0;
    for (u32 k = 0; k < width; k++)
        v |= (u32)p[k] << (8 * k);
    return v;
}

static inline i32 get_s(const u8 *p, u32 width)
{
    u32 v = get_u(p, width);
    u32 sh = 32 - 8 * width;
    return sh ? (i32)(v << sh) >> sh : (i32)v;
}

static inline void put_u(u8 *p, u32 width, u32 v)
{
    for (u32 k = 0; k < width; k++)
        p[k] = (u8)(v >> (8 * k));
}

/* ----- the command layer (commands.c) ----- */
/* Execute the request in rx[0..len): status, and the reply data written to out, its size in
 * *out_len. State changes only when the status is ST_OK. */
u32 execute(u32 opcode, const u8 *rx, u32 len, u8 *out, u32 *out_len);

#endif
