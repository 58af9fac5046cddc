/* The chip's arithmetic (docs/numerics.md): reads through the DAC, the crossbar and the ADC,
 * the stochastic pulse update, deterministic pulses, and the state they work on. Integer only,
 * bit for bit the twin's (emulator/twin.py). */
#include "firmware.h"

struct settings settings;
u32 nonce;
i16 weights[TILES][COLS][ROWS] SPRAM __attribute__((aligned(4)));
struct device devices[TILES][COLS][ROWS] SPRAM;
u64 counters[TILES][N_COUNTERS];
u32 shape_mode;
u32 shape_table[2 * SHAPE_NODES];

/* lowbias32(lowbias32(seed) ^ domain) for the five domains of §6.2, index = domain */
static u32 domain_base[6];
/* pulse trains of one update sample (slots 0-31, 32-63) and the signs of their codes */
static u32 row_lo[ROWS] SPRAM, row_hi[ROWS] SPRAM, col_lo[COLS] SPRAM, col_hi[COLS] SPRAM;
static u8 row_neg[ROWS] SPRAM, col_neg[COLS] SPRAM;
#if !HAVE_CROSSBAR_READ
static i32 dac_codes[MAX_LINES] SPRAM;
#endif

#if ACC_BITS <= 31
typedef i32 acc_t;
#else
typedef i64 acc_t;
#endif

static inline u32 next_key(u32 domain)
{
    return lowbias32(domain_base[domain] ^ nonce);
}

void chip_seed_changed(void)
{
    u32 s = lowbias32(settings.seed);
    for (u32 d = DOMAIN_FWD; d <= DOMAIN_C2C; d++)
        domain_base[d] = lowbias32(s ^ d);
}

static void default_settings(void)
{
    settings.in_bits = DEF_IN_BITS;
    settings.out_bits = DEF_OUT_BITS;
    settings.fwd_gain = DEF_FWD_GAIN;
    settings.fwd_shift = DEF_FWD_SHIFT;
    settings.bwd_gain = DEF_BWD_GAIN;
    settings.bwd_shift = DEF_BWD_SHIFT;
    settings.fwd_sigma = DEF_FWD_SIGMA;
    settings.bwd_sigma = DEF_BWD_SIGMA;
    settings.bl = DEF_BL;
    settings.dw_std = DEF_DW_STD;
    settings.seed = DEF_SEED;
    for (u32 t = 0; t < TILES; t++) {
        settings.shapes[t][0] = ROWS;
        settings.shapes[t][1] = COLS;
    }
    chip_seed_changed();
}

/* §8 RESET: states to 0, settings to their defaults, nonce and counters to 0; the map stays */
void chip_reset(void)
{
    u32 *w = (u32 *)&weights[0][0][0]; /* two states a word (the array is word aligned) */
    for (u32 k = 0; k < (TILES * COLS * ROWS + 1) / 2; k++)
        w[k] = 0;
    u64 *c = &counters[0][0];
    for (u32 k = 0; k < TILES * N_COUNTERS; k++)
        c[k] = 0;
    nonce = 0;
    default_settings();
#if HAVE_TIME
    physics_reset();
#endif
}

/* the chip as manufactured: the nominal device map (§7.2), then RESET */
void chip_power_up(void)
{
    struct device nominal = {NOMINAL_KU, NOMINAL_KD, NOMINAL_WMAX, NOMINAL_WMIN, NOMINAL_SU,
                             NOMINAL_SD};
    shape_mode = 0; /* the linear shape: every node 1.0 */
    for (u32 k = 0; k < 2 * SHAPE_NODES; k++)
        shape_table[k] = 1u << SHAPE_FRAC;
    const u32 *from = (const u32 *)&nominal; /* a device is four words */
    u32 *to = (u32 *)&devices[0][0][0];
    for (u32 k = 0; k < TILES * COLS * ROWS; k++, to += 4) {
        to[0] = from[0];
        to[1] = from[1];
        to[2] = from[2];
        to[3] = from[3];
    }
    chip_reset();
}

/* §4: b vectors of n DAC codes x (wire format) -> ADC codes y and saturation counts sat */
void chip_forward(u32 tile, u32 b, const u8 *x, u8 *y, u8 *sat, int backward)
{
    u32 n_in = settings.shapes[tile][0], n_out = settings.shapes[tile][1];
    u32 n = backward ? n_out : n_in, m = backward ? n_in : n_out;
    i32 lim = (1 << (settings.in_bits - 1)) - 1, top = (1 << (settings.out_bits - 1)) - 1;
    i32 gain = (i32)(backward ? settings.bwd_gain : settings.fwd_gain);
    u32 shift = (backward ? settings.bwd_shift : settings.fwd_shift) - NOISE_FRAC;
    i32 sigma = (i32)(backward ? settings.bwd_sigma : settings.fwd_sigma);
    u32 domain = backward ? DOMAIN_BWD : DOMAIN_FWD;
    u64 saturated = 0;
#if HAVE_TIME /* §11.4: the conductance and read-noise factors of T, once per command */
    gain = (i32)at_temperature((u32)gain, CG_T);
    sigma = (i32)at_temperature((u32)sigma, CN_T);
#endif
#if HAVE_CROSSBAR_READ
    IO(IO_XB_STRIDE) = backward ? 2 * ROWS : 2; /* along a row of W, or down a column */
#endif
    for (u32 v = 0; v < b; v++) {
#if HAVE_CROSSBAR_READ
        IO(IO_XB_LINE) = n;
#endif
        for (u32 k = 0; k < n; k++) { /* §4.1: the converter clips to its resolution */
            i32 c = get_s(x + (v * n + k) * W_DAC, W_DAC);
            c = c > lim ? lim : c < -lim ? -lim : c;
#if HAVE_CROSSBAR_READ
            IO(IO_XB_CODE) = (u32)c;
#else
            dac_codes[k] = c;
#endif
        }
        u32 key = next_key(domain);
        nonce++;
        u32 count = 0;
        for (u32 o = 0; o < m; o++) {
#if HAVE_CROSSBAR_READ
            /* §4.2 / §4.3 in the crossbar read unit: the write waits until the sum is done */
            IO(IO_XB_SUM_AT) = (u32)(backward ? &weights[tile][0][o] : &weights[tile][o][0]);
            acc_t acc = (i32)IO(IO_XB_SUM);
#else
            acc_t acc = 0;
            if (!backward) { /* §4.2: column o sums the rows */
                const i16 *w = weights[tile][o];
                for (u32 i = 0; i < n; i++)
                    acc += (acc_t)w[i] * dac_codes[i];
            } else { /* §4.3: row o sums the columns */
                const i16 *w = &weights[tile][0][o];
                for (u32 j = 0; j < n; j++)
                    acc += (acc_t)w[j * ROWS] * dac_codes[j];
            }
#endif
            i32 g = gauss(lowbias32(key ^ o)); /* §4.4 */
            i64 val = (((i64)acc * gain) >> shift) + g * sigma + (1 << (NOISE_FRAC - 1));
            i64 q = val >> NOISE_FRAC;
            i32 code = q > top ? top : q < -top ? -top : (i32)q;
            count += code != q;
            put_u(y + (v * m + o) * W_ADC, W_ADC, (u32)code);
        }
        put_u(sat + v * W_SAT, W_SAT, count);
        saturated += count;
    }
    u64 *c = counters[tile];
    c[backward ? C_BWD_VECTORS : C_FWD_VECTORS] += b;
    c[C_MACS] += (u64)b * n * m;
    c[C_DAC_CONVERSIONS] += (u64)b * n;
    c[C_ADC_CONVERSIONS] += (u64)b * m;
    c[C_ADC_SATURATIONS] += saturated;
}

#if HAVE_TIME
/* §11.4: the step-shape tables an update uses, scaled once per command by the step factor of
 * T; the linear mode as the bottom mode with every node CS[T] (at T0, the tables as loaded) */
static u32 use_mode, use_scaled[2 * SHAPE_NODES];
static const u32 *use_table;

static void shape_at_temperature(void)
{
    use_mode = shape_mode;
    use_table = shape_table;
    if (physics.temperature == T_REF)
        return;
    if (!use_mode)
        use_mode = SHAPE_BOTTOM;
    for (u32 k = 0; k < 2 * SHAPE_NODES; k++)
        use_scaled[k] = at_temperature(shape_table[k], CS_T);
    use_table = use_scaled;
}
#define SHAPE_MODE use_mode
#define SHAPE_TABLE use_table
#else
#define SHAPE_MODE shape_mode
#define SHAPE_TABLE shape_table
#endif

/* rinv = floor(2^(w_bits + RINV_EXTRA) / range) by shift and subtract (the core has no
 * divider), one quotient bit a step from the leading one; range >= 1 */
static u32 range_reciprocal(u32 range)
{
    u32 q = 0, r = 1;
    for (u32 b = 0; b <= W_BITS + RINV_EXTRA; b++) {
        q <<= 1;
        if (r >= range) {
            r -= range;
            q |= 1;
        }
        r <<= 1;
    }
    return q;
}

/* §5.4.1: rnd(s g, SHAPE_FRAC), g the step-shape table interpolated at the device's position
 * (rinv computed here, for each device updated while a table mode is loaded) */
static i32 shape_base(u32 s, i32 w, const struct device *dv, int up)
{
    u32 rinv = range_reciprocal((u32)(dv->wmax - dv->wmin));
    /* bottom: x = (w - wmin) / range; centered: x = (w + range) / (2 range), whose floor
     * by 2^(w_bits + 1) is the floor by 2^w_bits halved */
    u32 centered = SHAPE_MODE == SHAPE_CENTERED;
    u32 num = (u32)(w - dv->wmin + (centered ? dv->wmax : 0));
    u32 pos = (u32)(((u64)num * rinv) >> W_BITS) >> centered;
    u32 idx = pos >> SHAPE_POS_FRAC;
    if (idx > SHAPE_SEGS - 1)
        idx = SHAPE_SEGS - 1;
    u32 f = pos - (idx << SHAPE_POS_FRAC);
    const u32 *t = SHAPE_TABLE + (up ? 0 : SHAPE_NODES);
    u32 g = (t[idx] * ((1u << SHAPE_POS_FRAC) - f) + t[idx + 1] * f
             + (1u << (SHAPE_POS_FRAC - 1))) >> SHAPE_POS_FRAC;
    return (i32)(((u64)s * g + (1u << (SHAPE_FRAC - 1))) >> SHAPE_FRAC);
}

/* §5.4: n coincidences on device (j, i), up or down, from its state now */
static void respond(u32 tile, u32 j, u32 i, u32 n, int up, u32 key_c2c)
{
    const struct device *dv = &devices[tile][j][i];
    i32 w = weights[tile][j][i];
    i32 k = up ? dv->ku : dv->kd;
    i32 step = up ? dv->su : dv->sd;
    if (SHAPE_MODE)
        step = shape_base((u32)step, w, dv, up);
    if (k)
        step += (i32)(((i64)k * w + (1 << (SLOPE_FRAC - 1))) >> SLOPE_FRAC);
    if (step < 0)
        step = 0;
    i32 t = 0;
    if (settings.dw_std) {
        i32 g = gauss(lowbias32(key_c2c ^ (j * ROWS + i)));
        i32 e = (g * (i32)settings.dw_std + (1 << (C2C_SHIFT - 1))) >> C2C_SHIFT;
        t = (e * (i32)SQRT_TABLE[n] + (1 << (SQRT_FRAC - 1))) >> SQRT_FRAC;
    }
    i64 total = (i64)n * step + (((i64)step * t + (1 << (C2C_FRAC - 1))) >> C2C_FRAC);
    i64 nw = up ? w + total : w - total;
    if (nw > dv->wmax)
        nw = dv->wmax;
    if (nw < dv->wmin)
        nw = dv->wmin;
    weights[tile][j][i] = (i16)nw;
}

/* §5.2: the pulse trains of n lines with signed probability codes under one key: bit s of
 * train_lo (s < 32) or train_hi (s - 32) is slot s; slots from BL on are 0 */
static void make_trains(const u8 *codes, u32 n, u32 key, u32 *train_lo, u32 *train_hi, u8 *neg)
{
    u32 bl = settings.bl, groups = (bl + 3) >> 2;
    u32 keep_lo = bl >= 32 ? ~0u : (1u << bl) - 1;
    u32 keep_hi = bl >= 64 ? ~0u : bl > 32 ? (1u << (bl - 32)) - 1 : 0;
    for (u32 line = 0; line < n; line++) {
        i32 c = get_s(codes + line * W_P, W_P);
        u32 p = (u32)(c < 0 ? -c : c);
        u32 lo = 0, hi = 0;
        neg[line] = c < 0;
        if (p >= P_MAX) {
            lo = hi = ~0u;
        } else if (p) {
            /* byte k of a word fires iff it is below p: compare it in place against p << 8k */
            u32 p8 = p << 8, p16 = p << 16, p24 = p << 24;
            for (u32 g = 0; g < groups; g++) {
                u32 w = lowbias32(key ^ ((line << 4) | g));
                u32 bits = (u32)((w & 0xffu) < p) | (u32)((w & 0xff00u) < p8) << 1
                           | (u32)((w & 0xff0000u) < p16) << 2 | (u32)(w < p24) << 3;
                if (g < 8)
                    lo |= bits << (4 * g);
                else
                    hi |= bits << (4 * (g - 8));
            }
        }
        train_lo[line] = lo & keep_lo;
        train_hi[line] = hi & keep_hi;
    }
}

static inline u32 popcount32(u32 x)
{
    x -= (x >> 1) & 0x55555555u;
    x = (x & 0x33333333u) + ((x >> 2) & 0x33333333u);
    x = (x + (x >> 4)) & 0x0f0f0f0fu;
    return (x * 0x01010101u) >> 24;
}

/* §5: b samples of probability codes x (n_in each) and d (n_out each), wire format */
void chip_update(u32 tile, u32 b, const u8 *x, const u8 *d)
{
    u32 n_in = settings.shapes[tile][0], n_out = settings.shapes[tile][1];
    u64 pulses = 0;
#if HAVE_TIME
    shape_at_temperature();
#endif
    for (u32 s = 0; s < b; s++) {
        make_trains(x + s * n_in * W_P, n_in, next_key(DOMAIN_ROW), row_lo, row_hi, row_neg);
        make_trains(d + s * n_out * W_P, n_out, next_key(DOMAIN_COL), col_lo, col_hi, col_neg);
        u32 key_c2c = next_key(DOMAIN_C2C);
        nonce++;
        for (u32 j = 0; j < n_out; j++) {
            u32 clo = col_lo[j], chi = col_hi[j];
            if (!(clo | chi))
                continue;
            for (u32 i = 0; i < n_in; i++) {
                u32 hlo = row_lo[i] & clo, n;
                if (settings.bl <= 32) { /* the usual BL: one word a train */
                    if (!hlo)
                        continue;
                    n = popcount32(hlo);
                } else {
                    u32 hhi = row_hi[i] & chi;
                    if (!(hlo | hhi))
                        continue;
                    n = popcount32(hlo) + popcount32(hhi);
                }
                respond(tile, j, i, n, row_neg[i] != col_neg[j], key_c2c);
                pulses += n;
            }
        }
    }
    counters[tile][C_UPDATE_SAMPLES] += b;
    counters[tile][C_PULSES] += pulses;
}

/* §5.5: signed counts along row index (axis 0: devices (j, index)) or column index (axis 1:
 * devices (index, i)) */
void chip_pulse(u32 tile, u32 axis, u32 index, const u8 *counts)
{
    u32 len = axis ? settings.shapes[tile][0] : settings.shapes[tile][1];
    u32 key_c2c = next_key(DOMAIN_C2C);
    nonce++;
    u64 pulses = 0;
#if HAVE_TIME
    shape_at_temperature();
#endif
    for (u32 q = 0; q < len; q++) {
        i32 c = get_s(counts + q * W_CNT, W_CNT);
        if (!c)
            continue;
        u32 n = (u32)(c < 0 ? -c : c);
        respond(tile, axis ? index : q, axis ? q : index, n, c > 0, key_c2c);
        pulses += n;
    }
    counters[tile][C_PULSE_OPS] += 1;
    counters[tile][C_PULSES] += pulses;
}
