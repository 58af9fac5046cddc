/* Time and temperature (docs/numerics.md §11): the settings, the chip time, the tiles' drift
 * ages and ADVANCE, bit for bit emulator/physics.py. Built only where config.has_time. */
#include "firmware.h"

#if HAVE_TIME
struct physics physics;
u32 device_key; /* RESET keeps it: it belongs to the chip, like the device map */
u64 chip_time, ages[TILES];

/* §11.1: the settings' defaults, time and every age 0 (RESET, power-up) */
void physics_reset(void)
{
    physics.drift_nu = DEF_DRIFT_NU;
    physics.drift_nu_dtod = DEF_DRIFT_NU_DTOD;
    physics.decay_rate = DEF_DECAY_RATE;
    physics.decay_dtod = DEF_DECAY_DTOD;
    physics.temperature = DEF_TEMPERATURE;
    chip_time = 0;
    for (u32 t = 0; t < TILES; t++)
        ages[t] = 0;
}

/* §11.3 LOG2(a), a >= 1: LOG_FRAC fractional bits */
static u32 log2_fixed(u64 a)
{
    u32 e = 0;
    while (a >> (e + 1))
        e++;
    u32 z = (u32)(e >= LOG_FRAC ? a >> (e - LOG_FRAC) : a << (LOG_FRAC - e))
            & ((1u << LOG_FRAC) - 1);
    u32 idx = z >> POS_BITS, fr = z & ((1u << POS_BITS) - 1);
    return (e << LOG_FRAC) + ((LOG2T[idx] * ((1u << POS_BITS) - fr) + LOG2T[idx + 1] * fr
                               + (1u << (POS_BITS - 1))) >> POS_BITS);
}

/* §11.3 EXP2N(X) = 2^(-X / 2^16) 2^16, X saturated at X_ZERO (f = 0) */
static u32 exp2n(u64 x)
{
    u32 v = x > X_ZERO ? X_ZERO : (u32)x;
    u32 n = v >> LOG_FRAC, r = v & ((1u << LOG_FRAC) - 1);
    u32 idx = r >> POS_BITS, fr = r & ((1u << POS_BITS) - 1);
    u32 m = (EXP2T[idx] * ((1u << POS_BITS) - fr) + EXP2T[idx + 1] * fr
             + (1u << (POS_BITS - 1))) >> POS_BITS;
    return n ? (m + (1u << (n - 1))) >> n : m;
}

_Static_assert(RATE_FRAC >= 32 && RATE_FRAC < 64, "decay_exponent shifts a 96-bit product");

/* min(rnd(a * b, RATE_FRAC), X_ZERO) for a, b < 2^64: the product in four 32-bit parts */
static u32 decay_exponent(u64 a, u64 b)
{
    u64 a0 = (u32)a, a1 = a >> 32, b0 = (u32)b, b1 = b >> 32;
    u64 p00 = a0 * b0, p01 = a0 * b1, p10 = a1 * b0;
    u64 mid = (p00 >> 32) + (u32)p01 + (u32)p10;
    u64 lo = (mid << 32) | (u32)p00;
    u64 hi = a1 * b1 + (p01 >> 32) + (p10 >> 32) + (mid >> 32);
    u64 lo2 = lo + (1ull << (RATE_FRAC - 1));
    hi += lo2 < lo;
    if (hi >> 32) /* the result is at least 2^(96 - RATE_FRAC), far past X_ZERO */
        return X_ZERO;
    u64 v = (hi << (64 - RATE_FRAC)) | (lo2 >> RATE_FRAC);
    return v > X_ZERO ? X_ZERO : (u32)v;
}

/* §11.2 rt_d = max(0, rate + ((rate * e) >> 16)), e = rnd(g * decay_dtod, 8), the product
 * split at bit 16 (exact: the high part's product is a multiple of 2^16) */
static u64 device_rate(i32 g)
{
    i64 e = ((i64)g * (i32)physics.decay_dtod + 128) >> 8;
    u64 rate = physics.decay_rate;
    i64 v = (i64)rate + (i64)(rate >> 16) * e + (((i64)(rate & 0xffff) * e) >> 16);
    return v < 0 ? 0 : (u64)v;
}

/* §11.3 ADVANCE: ages step by rnd(dt * ACCEL[T], 16) (split at bit 16, exact), every device
 * of every tile by the factor of its drift and decay */
u32 chip_advance(u32 dt)
{
    u64 accel = ACCEL_T[physics.temperature - T_MIN];
    u64 step = (u64)dt * (accel >> ACCEL_FRAC)
               + (((u64)dt * (accel & ((1u << ACCEL_FRAC) - 1)) + (1u << (ACCEL_FRAC - 1)))
                  >> ACCEL_FRAC);
    if (chip_time + dt < chip_time)
        return ST_BAD_ARGUMENT;
    for (u32 t = 0; t < TILES; t++)
        if (ages[t] + step < ages[t])
            return ST_BAD_ARGUMENT;
    u64 big_d = (u64)dt * LOG2E;
    int decay = dt && physics.decay_rate;
    for (u32 t = 0; t < TILES; t++) {
        u64 a = ages[t], na = a + step;
        u32 dl = log2_fixed(na > DRIFT_T0_MS ? na : DRIFT_T0_MS)
                 - log2_fixed(a > DRIFT_T0_MS ? a : DRIFT_T0_MS);
        int drift = dl && physics.drift_nu + physics.drift_nu_dtod;
        ages[t] = na;
        if (!(drift || decay))
            continue;
        /* key(device key, domain, tile) of §6.2, the tile in the nonce's place */
        u32 base = lowbias32(device_key);
        u32 kn = lowbias32(lowbias32(base ^ DOMAIN_DRIFT) ^ t), kl = lowbias32(lowbias32(base ^ DOMAIN_DECAY) ^ t);
        for (u32 j = 0; j < COLS; j++) {
            for (u32 i = 0; i < ROWS; i++) {
                u32 k = j * ROWS + i;
                u64 x = 0;
                if (drift) {
                    i32 g = gauss(lowbias32(k ^ kn));
                    i32 nu = (i32)physics.drift_nu + ((g * (i32)physics.drift_nu_dtod + 128) >> 8);
                    if (nu > 0)
                        x = ((u64)nu * dl + (1u << (NU_FRAC - 1))) >> NU_FRAC;
                }
                if (decay)
                    x += decay_exponent(device_rate(gauss(lowbias32(k ^ kl))), big_d);
                i16 *w = &weights[t][j][i];
                *w = (i16)(((i64)*w * exp2n(x) + (1 << (FACTOR_FRAC - 1))) >> FACTOR_FRAC);
            }
        }
    }
    chip_time += dt;
    return ST_OK;
}
#endif
