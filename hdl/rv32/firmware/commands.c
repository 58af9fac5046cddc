/* The commands of docs/protocol.md: length and argument checks, then execution. The checks
 * are the reference device's (emulator/executor.py): a payload whose length differs from what
 * its layout and counts imply is BAD_LENGTH, a field out of range BAD_ARGUMENT, and neither
 * changes any state. Field offsets and widths come from the command table (chip.h). */
#include "firmware.h"

#define FIELD(p, name) get_u((p) + name, name##_W)

static u32 cycles_at_start;

/* every element of an array of a kind within its range */
static int in_range(const u8 *p, u32 count, u32 width, int is_signed, i64 lo, i64 hi)
{
    for (u32 k = 0; k < count; k++, p += width) {
        i64 v = is_signed ? (i64)get_s(p, width) : (i64)get_u(p, width);
        if (v < lo || v > hi)
            return 0;
    }
    return 1;
}

#define KIND_OK(p, count, KIND) \
    in_range((p), (count), W_##KIND, KIND##_SIGNED, KIND##_LO, KIND##_HI)

static void charge_cycles(u32 tile)
{
    counters[tile][C_CYCLES] += IO(IO_CYCLES) - cycles_at_start;
}

static u32 set_settings(const u8 *rx, u32 len)
{
    if (len < REQ_SET_FIXED)
        return ST_BAD_LENGTH;
    u32 tiles = FIELD(rx, REQ_SET_TILES);
    if (len != REQ_SET_FIXED + 2 * tiles * REQ_SET_SHAPES_W)
        return ST_BAD_LENGTH;
    struct settings s;
    s.in_bits = FIELD(rx, REQ_SET_IN_BITS);
    s.out_bits = FIELD(rx, REQ_SET_OUT_BITS);
    s.fwd_gain = FIELD(rx, REQ_SET_FWD_GAIN);
    s.fwd_shift = FIELD(rx, REQ_SET_FWD_SHIFT);
    s.bwd_gain = FIELD(rx, REQ_SET_BWD_GAIN);
    s.bwd_shift = FIELD(rx, REQ_SET_BWD_SHIFT);
    s.fwd_sigma = FIELD(rx, REQ_SET_FWD_SIGMA);
    s.bwd_sigma = FIELD(rx, REQ_SET_BWD_SIGMA);
    s.bl = FIELD(rx, REQ_SET_BL);
    s.dw_std = FIELD(rx, REQ_SET_DW_STD);
    s.seed = FIELD(rx, REQ_SET_SEED);
    u32 restart = FIELD(rx, REQ_SET_RESTART);
    if (tiles != TILES || restart > 1 || s.in_bits < 2 || s.in_bits > IN_BITS
        || s.out_bits < 2 || s.out_bits > OUT_BITS || s.fwd_shift < NOISE_FRAC
        || s.fwd_shift > MAX_SHIFT || s.bwd_shift < NOISE_FRAC || s.bwd_shift > MAX_SHIFT
        || s.bl < 1 || s.bl > BL_MAX)
        return ST_BAD_ARGUMENT;
    const u8 *shp = rx + REQ_SET_FIXED;
    for (u32 t = 0; t < TILES; t++) {
        u32 n_in = get_u(shp + 4 * t, 2), n_out = get_u(shp + 4 * t + 2, 2);
        if (n_in < 1 || n_in > ROWS || n_out < 1 || n_out > COLS)
            return ST_BAD_ARGUMENT;
        s.shapes[t][0] = (u16)n_in;
        s.shapes[t][1] = (u16)n_out;
    }
    int new_seed = s.seed != settings.seed;
    settings = s;
    if (restart || new_seed)
        nonce = 0;
    if (new_seed)
        chip_seed_changed();
    return ST_OK;
}

static u32 get_settings(u8 *out, u32 *out_len)
{
    put_u(out + REP_GET_IN_BITS, REP_GET_IN_BITS_W, settings.in_bits);
    put_u(out + REP_GET_OUT_BITS, REP_GET_OUT_BITS_W, settings.out_bits);
    put_u(out + REP_GET_FWD_GAIN, REP_GET_FWD_GAIN_W, settings.fwd_gain);
    put_u(out + REP_GET_FWD_SHIFT, REP_GET_FWD_SHIFT_W, settings.fwd_shift);
    put_u(out + REP_GET_BWD_GAIN, REP_GET_BWD_GAIN_W, settings.bwd_gain);
    put_u(out + REP_GET_BWD_SHIFT, REP_GET_BWD_SHIFT_W, settings.bwd_shift);
    put_u(out + REP_GET_FWD_SIGMA, REP_GET_FWD_SIGMA_W, settings.fwd_sigma);
    put_u(out + REP_GET_BWD_SIGMA, REP_GET_BWD_SIGMA_W, settings.bwd_sigma);
    put_u(out + REP_GET_BL, REP_GET_BL_W, settings.bl);
    put_u(out + REP_GET_DW_STD, REP_GET_DW_STD_W, settings.dw_std);
    put_u(out + REP_GET_SEED, REP_GET_SEED_W, settings.seed);
    put_u(out + REP_GET_NONCE, REP_GET_NONCE_W, nonce);
    put_u(out + REP_GET_TILES, REP_GET_TILES_W, TILES);
    for (u32 t = 0; t < TILES; t++) {
        put_u(out + REP_GET_FIXED + 4 * t, 2, settings.shapes[t][0]);
        put_u(out + REP_GET_FIXED + 4 * t + 2, 2, settings.shapes[t][1]);
    }
    *out_len = REP_GET_FIXED + 4 * TILES;
    return ST_OK;
}

/* the tile, first device and device count of PROGRAM, READ, LOAD_MAP, READ_MAP: one layout
 * in the table (read through READ's offsets), and FORWARD's is BACKWARD's */
_Static_assert(REQ_PROGRAM_K0 == REQ_READ_K0 && REQ_LOAD_MAP_K0 == REQ_READ_K0
               && REQ_READ_MAP_K0 == REQ_READ_K0 && REQ_PROGRAM_K == REQ_READ_K
               && REQ_LOAD_MAP_K == REQ_READ_K && REQ_READ_MAP_K == REQ_READ_K
               && REQ_PROGRAM_TILE == REQ_READ_TILE && REQ_LOAD_MAP_TILE == REQ_READ_TILE
               && REQ_READ_MAP_TILE == REQ_READ_TILE, "the span fields share one layout");
_Static_assert(REQ_BACKWARD_FIXED == REQ_FORWARD_FIXED && REP_BACKWARD_FIXED == REP_FORWARD_FIXED
               && REQ_BACKWARD_N == REQ_FORWARD_N && REQ_BACKWARD_B == REQ_FORWARD_B,
               "FORWARD and BACKWARD share one layout");
struct span {
    u32 tile, k0, k;
};

/* device (j, i) of the window's flat index j * n_in + i, walked in that order */
struct walk {
    u32 j, i, n_in;
};

static struct walk walk_from(u32 k, u32 n_in)
{
    struct walk w = {0, k, n_in};
    while (w.i >= n_in) { /* k <= rows * cols: a few dozen steps, no division */
        w.i -= n_in;
        w.j++;
    }
    return w;
}

static inline void walk_next(struct walk *w)
{
    if (++w->i == w->n_in) {
        w->i = 0;
        w->j++;
    }
}

static int span_ok(const u8 *rx, struct span *s, u32 whole_tile)
{
    s->tile = FIELD(rx, REQ_READ_TILE);
    s->k0 = FIELD(rx, REQ_READ_K0);
    s->k = FIELD(rx, REQ_READ_K);
    if (s->tile >= TILES)
        return 0;
    u32 total = whole_tile ? ROWS * COLS
                           : (u32)settings.shapes[s->tile][0] * settings.shapes[s->tile][1];
    return (u64)s->k0 + s->k <= total;
}

static u32 program(const u8 *rx, u32 len)
{
    if (len < REQ_PROGRAM_FIXED)
        return ST_BAD_LENGTH;
    u32 k = FIELD(rx, REQ_PROGRAM_K);
    const u8 *w = rx + REQ_PROGRAM_FIXED;
    struct span s;
    if (len != REQ_PROGRAM_FIXED + k * W_W)
        return ST_BAD_LENGTH;
    if (!span_ok(rx, &s, 0) || !KIND_OK(w, k, W))
        return ST_BAD_ARGUMENT;
    struct walk at = walk_from(s.k0, settings.shapes[s.tile][0]);
    for (u32 q = 0; q < k; q++, w += W_W, walk_next(&at)) {
        const struct device *dv = &devices[s.tile][at.j][at.i];
        i32 v = get_s(w, W_W);
        weights[s.tile][at.j][at.i] =
            (i16)(v > dv->wmax ? dv->wmax : v < dv->wmin ? dv->wmin : v);
    }
#if HAVE_TIME
    ages[s.tile] = 0; /* §11.3: the tile was programmed now */
#endif
    charge_cycles(s.tile);
    return ST_OK;
}

static u32 read_states(const u8 *rx, u32 len, u8 *out, u32 *out_len)
{
    struct span s;
    if (len != REQ_READ_FIXED)
        return ST_BAD_LENGTH;
    if (!span_ok(rx, &s, 0) || 1 + REP_READ_FIXED + s.k * W_W > MAX_PAYLOAD)
        return ST_BAD_ARGUMENT;
    struct walk at = walk_from(s.k0, settings.shapes[s.tile][0]);
    put_u(out + REP_READ_K, REP_READ_K_W, s.k);
    u8 *w = out + REP_READ_FIXED;
    for (u32 q = 0; q < s.k; q++, w += W_W, walk_next(&at))
        put_u(w, W_W, (u32)(i32)weights[s.tile][at.j][at.i]);
    *out_len = REP_READ_FIXED + s.k * W_W;
    charge_cycles(s.tile);
    return ST_OK;
}

#define MAP_BYTES (2 * W_STEP + 2 * W_SLOPE + 2 * W_W)

static u32 load_map(const u8 *rx, u32 len)
{
    if (len < REQ_LOAD_MAP_FIXED)
        return ST_BAD_LENGTH;
    u32 k = FIELD(rx, REQ_LOAD_MAP_K);
    struct span s;
    if (len != REQ_LOAD_MAP_FIXED + k * MAP_BYTES)
        return ST_BAD_LENGTH;
    const u8 *su = rx + REQ_LOAD_MAP_FIXED, *sd = su + k * W_STEP, *ku = sd + k * W_STEP;
    const u8 *kd = ku + k * W_SLOPE, *wmax = kd + k * W_SLOPE, *wmin = wmax + k * W_W;
    if (!span_ok(rx, &s, 1) || !KIND_OK(su, k, STEP) || !KIND_OK(sd, k, STEP)
        || !KIND_OK(ku, k, SLOPE) || !KIND_OK(kd, k, SLOPE) || !KIND_OK(wmax, k, W)
        || !KIND_OK(wmin, k, W))
        return ST_BAD_ARGUMENT;
    for (u32 q = 0; q < k; q++) {
        i32 hi = get_s(wmax + q * W_W, W_W), lo = get_s(wmin + q * W_W, W_W);
        if (hi < 0 || lo > 0 || lo >= hi)
            return ST_BAD_ARGUMENT;
    }
    struct device *dv = &devices[s.tile][0][0] + s.k0;
    i16 *st = &weights[s.tile][0][0] + s.k0;
    for (u32 q = 0; q < k; q++, dv++, st++) {
        dv->su = (u16)get_u(su + q * W_STEP, W_STEP);
        dv->sd = (u16)get_u(sd + q * W_STEP, W_STEP);
        dv->ku = get_s(ku + q * W_SLOPE, W_SLOPE);
        dv->kd = get_s(kd + q * W_SLOPE, W_SLOPE);
        dv->wmax = (i16)get_s(wmax + q * W_W, W_W);
        dv->wmin = (i16)get_s(wmin + q * W_W, W_W);
        if (*st > dv->wmax) /* a device's state clips into its new bounds */
            *st = dv->wmax;
        if (*st < dv->wmin)
            *st = dv->wmin;
    }
    charge_cycles(s.tile);
    return ST_OK;
}

static u32 read_map(const u8 *rx, u32 len, u8 *out, u32 *out_len)
{
    struct span s;
    if (len != REQ_READ_MAP_FIXED)
        return ST_BAD_LENGTH;
    if (!span_ok(rx, &s, 1) || 1 + REP_READ_MAP_FIXED + s.k * MAP_BYTES > MAX_PAYLOAD)
        return ST_BAD_ARGUMENT;
    u32 k = s.k;
    put_u(out + REP_READ_MAP_K, REP_READ_MAP_K_W, k);
    u8 *su = out + REP_READ_MAP_FIXED, *sd = su + k * W_STEP, *ku = sd + k * W_STEP;
    u8 *kd = ku + k * W_SLOPE, *wmax = kd + k * W_SLOPE, *wmin = wmax + k * W_W;
    const struct device *dv = &devices[s.tile][0][0] + s.k0;
    for (u32 q = 0; q < k; q++, dv++) {
        put_u(su + q * W_STEP, W_STEP, dv->su);
        put_u(sd + q * W_STEP, W_STEP, dv->sd);
        put_u(ku + q * W_SLOPE, W_SLOPE, (u32)dv->ku);
        put_u(kd + q * W_SLOPE, W_SLOPE, (u32)dv->kd);
        put_u(wmax + q * W_W, W_W, (u32)(i32)dv->wmax);
        put_u(wmin + q * W_W, W_W, (u32)(i32)dv->wmin);
    }
    *out_len = REP_READ_MAP_FIXED + k * MAP_BYTES;
    charge_cycles(s.tile);
    return ST_OK;
}

#define SHAPE_ONE (1u << SHAPE_FRAC)

/* LOAD_SHAPE's and READ_SHAPE's T_up and T_down, one array of 2 * SHAPE_NODES nodes, as
 * shape_table is */
_Static_assert(REQ_LOAD_SHAPE_DOWN == REQ_LOAD_SHAPE_UP + SHAPE_NODES * W_NODE
               && REP_READ_SHAPE_DOWN == REP_READ_SHAPE_UP + SHAPE_NODES * W_NODE,
               "the tables follow each other");

static u32 load_shape(const u8 *rx, u32 len)
{
    if (len != REQ_LOAD_SHAPE_FIXED)
        return ST_BAD_LENGTH;
    u32 mode = FIELD(rx, REQ_LOAD_SHAPE_MODE);
    const u8 *nodes = rx + REQ_LOAD_SHAPE_UP;
    /* a table's nodes in their kind's range; the linear shape's every node 1.0 */
    i64 lo = mode ? NODE_LO : SHAPE_ONE, hi = mode ? NODE_HI : SHAPE_ONE;
    if (mode >= N_SHAPE_MODES || (mode && !SHAPE_TABLES)
        || !in_range(nodes, 2 * SHAPE_NODES, W_NODE, NODE_SIGNED, lo, hi))
        return ST_BAD_ARGUMENT;
    for (u32 k = 0; k < 2 * SHAPE_NODES; k++)
        shape_table[k] = get_u(nodes + k * W_NODE, W_NODE);
    shape_mode = mode;
    return ST_OK;
}

static u32 read_shape(u8 *out, u32 *out_len)
{
    put_u(out + REP_READ_SHAPE_MODE, REP_READ_SHAPE_MODE_W, shape_mode);
    for (u32 k = 0; k < 2 * SHAPE_NODES; k++)
        put_u(out + REP_READ_SHAPE_UP + k * W_NODE, W_NODE, shape_table[k]);
    *out_len = REP_READ_SHAPE_FIXED;
    return ST_OK;
}

static u32 read_op(const u8 *rx, u32 len, u8 *out, u32 *out_len, int backward)
{
    if (len < REQ_FORWARD_FIXED)
        return ST_BAD_LENGTH;
    u32 tile = FIELD(rx, REQ_FORWARD_TILE), b = FIELD(rx, REQ_FORWARD_B);
    u32 n = FIELD(rx, REQ_FORWARD_N);
    if ((u64)len != REQ_FORWARD_FIXED + (u64)b * n * W_DAC)
        return ST_BAD_LENGTH;
    if (tile >= TILES || b < 1)
        return ST_BAD_ARGUMENT;
    u32 n_in = settings.shapes[tile][0], n_out = settings.shapes[tile][1];
    u32 m = backward ? n_in : n_out;
    if (n != (backward ? n_out : n_in)
        || 1 + REP_FORWARD_FIXED + (u64)b * m * W_ADC + (u64)b * W_SAT > MAX_PAYLOAD
        || !KIND_OK(rx + REQ_FORWARD_FIXED, b * n, DAC))
        return ST_BAD_ARGUMENT;
    put_u(out + REP_FORWARD_B, REP_FORWARD_B_W, b);
    put_u(out + REP_FORWARD_M, REP_FORWARD_M_W, m);
    u8 *y = out + REP_FORWARD_FIXED;
    chip_forward(tile, b, rx + REQ_FORWARD_FIXED, y, y + b * m * W_ADC, backward);
    *out_len = REP_FORWARD_FIXED + b * m * W_ADC + b * W_SAT;
    charge_cycles(tile);
    return ST_OK;
}

static u32 update(const u8 *rx, u32 len)
{
    if (len < REQ_UPDATE_FIXED)
        return ST_BAD_LENGTH;
    u32 tile = FIELD(rx, REQ_UPDATE_TILE), b = FIELD(rx, REQ_UPDATE_B);
    u32 ni = FIELD(rx, REQ_UPDATE_NI), nj = FIELD(rx, REQ_UPDATE_NJ);
    if ((u64)len != REQ_UPDATE_FIXED + (u64)b * ni * W_P + (u64)b * nj * W_P)
        return ST_BAD_LENGTH;
    const u8 *x = rx + REQ_UPDATE_FIXED, *d = x + b * ni * W_P;
    if (tile >= TILES || b < 1 || ni != settings.shapes[tile][0]
        || nj != settings.shapes[tile][1] || !KIND_OK(x, b * ni, P) || !KIND_OK(d, b * nj, P))
        return ST_BAD_ARGUMENT;
    chip_update(tile, b, x, d);
    charge_cycles(tile);
    return ST_OK;
}

static u32 pulse(const u8 *rx, u32 len)
{
    if (len < REQ_PULSE_FIXED)
        return ST_BAD_LENGTH;
    u32 tile = FIELD(rx, REQ_PULSE_TILE), axis = FIELD(rx, REQ_PULSE_AXIS);
    u32 index = FIELD(rx, REQ_PULSE_INDEX), n = FIELD(rx, REQ_PULSE_N);
    if (len != REQ_PULSE_FIXED + n * W_CNT)
        return ST_BAD_LENGTH;
    if (tile >= TILES || axis > 1)
        return ST_BAD_ARGUMENT;
    u32 n_in = settings.shapes[tile][0], n_out = settings.shapes[tile][1];
    if (index >= (axis ? n_out : n_in) || n != (axis ? n_in : n_out)
        || !KIND_OK(rx + REQ_PULSE_FIXED, n, CNT))
        return ST_BAD_ARGUMENT;
    chip_pulse(tile, axis, index, rx + REQ_PULSE_FIXED);
    charge_cycles(tile);
    return ST_OK;
}

static u32 read_counters(const u8 *rx, u32 len, u8 *out, u32 *out_len)
{
    if (len != REQ_COUNTERS_FIXED)
        return ST_BAD_LENGTH;
    u32 tile = FIELD(rx, REQ_COUNTERS_TILE);
    if (tile >= TILES)
        return ST_BAD_ARGUMENT;
    put_u(out + REP_COUNTERS_N, REP_COUNTERS_N_W, N_COUNTERS);
    u8 *v = out + REP_COUNTERS_FIXED;
    for (u32 c = 0; c < N_COUNTERS; c++, v += 8) {
        put_u(v, 4, (u32)counters[tile][c]);
        put_u(v + 4, 4, (u32)(counters[tile][c] >> 32));
    }
    *out_len = REP_COUNTERS_FIXED + 8 * N_COUNTERS;
    return ST_OK;
}

#if HAVE_TIME
/* §11: SET_PHYSICS, GET_PHYSICS (u64 fields as two words) and ADVANCE */
static u64 get_u64(const u8 *p)
{
    return get_u(p, 4) | (u64)get_u(p + 4, 4) << 32;
}

static void put_u64(u8 *p, u64 v)
{
    put_u(p, 4, (u32)v);
    put_u(p + 4, 4, (u32)(v >> 32));
}

_Static_assert(REQ_SET_PHYSICS_DECAY_RATE_W == 8 && REP_GET_PHYSICS_TIME_W == 8
               && REP_GET_PHYSICS_AGES_W == 8 && REP_ADVANCE_TIME_W == 8, "u64 fields");

static u32 set_physics(const u8 *rx, u32 len)
{
    if (len != REQ_SET_PHYSICS_FIXED)
        return ST_BAD_LENGTH;
    struct physics p;
    p.drift_nu = FIELD(rx, REQ_SET_PHYSICS_DRIFT_NU);
    p.drift_nu_dtod = FIELD(rx, REQ_SET_PHYSICS_DRIFT_NU_DTOD);
    p.decay_rate = get_u64(rx + REQ_SET_PHYSICS_DECAY_RATE);
    p.decay_dtod = FIELD(rx, REQ_SET_PHYSICS_DECAY_DTOD);
    p.temperature = FIELD(rx, REQ_SET_PHYSICS_TEMPERATURE);
    if (p.decay_rate >> RATE_BITS || p.temperature < T_MIN || p.temperature > T_MAX)
        return ST_BAD_ARGUMENT;
    physics = p;
    device_key = FIELD(rx, REQ_SET_PHYSICS_DEVICE_KEY);
    return ST_OK;
}

static u32 get_physics(u8 *out, u32 *out_len)
{
    put_u(out + REP_GET_PHYSICS_DRIFT_NU, REP_GET_PHYSICS_DRIFT_NU_W, physics.drift_nu);
    put_u(out + REP_GET_PHYSICS_DRIFT_NU_DTOD, REP_GET_PHYSICS_DRIFT_NU_DTOD_W,
          physics.drift_nu_dtod);
    put_u64(out + REP_GET_PHYSICS_DECAY_RATE, physics.decay_rate);
    put_u(out + REP_GET_PHYSICS_DECAY_DTOD, REP_GET_PHYSICS_DECAY_DTOD_W, physics.decay_dtod);
    put_u(out + REP_GET_PHYSICS_TEMPERATURE, REP_GET_PHYSICS_TEMPERATURE_W, physics.temperature);
    put_u(out + REP_GET_PHYSICS_DEVICE_KEY, REP_GET_PHYSICS_DEVICE_KEY_W, device_key);
    put_u64(out + REP_GET_PHYSICS_TIME, chip_time);
    put_u(out + REP_GET_PHYSICS_TILES, REP_GET_PHYSICS_TILES_W, TILES);
    for (u32 t = 0; t < TILES; t++)
        put_u64(out + REP_GET_PHYSICS_FIXED + 8 * t, ages[t]);
    *out_len = REP_GET_PHYSICS_FIXED + 8 * TILES;
    return ST_OK;
}

static u32 advance(const u8 *rx, u32 len, u8 *out, u32 *out_len)
{
    if (len != REQ_ADVANCE_FIXED)
        return ST_BAD_LENGTH;
    u32 st = chip_advance(FIELD(rx, REQ_ADVANCE_DT));
    if (st == ST_OK) {
        put_u64(out + REP_ADVANCE_TIME, chip_time);
        *out_len = REP_ADVANCE_FIXED;
    }
    return st;
}
#endif

u32 execute(u32 opcode, const u8 *rx, u32 len, u8 *out, u32 *out_len)
{
    *out_len = 0;
    cycles_at_start = IO(IO_CYCLES);
    switch (opcode) {
    case OP_INFO:
        if (len)
            return ST_BAD_LENGTH;
        for (u32 k = 0; k < sizeof(INFO_REPLY); k++)
            out[k] = INFO_REPLY[k];
        *out_len = sizeof(INFO_REPLY);
        return ST_OK;
    case OP_RESET:
        if (len)
            return ST_BAD_LENGTH;
        chip_reset();
        return ST_OK;
    case OP_SET:
        return set_settings(rx, len);
    case OP_GET:
        if (len)
            return ST_BAD_LENGTH;
        return get_settings(out, out_len);
    case OP_PROGRAM:
        return program(rx, len);
    case OP_READ:
        return read_states(rx, len, out, out_len);
    case OP_LOAD_MAP:
        return load_map(rx, len);
    case OP_READ_MAP:
        return read_map(rx, len, out, out_len);
    case OP_LOAD_SHAPE:
        return load_shape(rx, len);
    case OP_READ_SHAPE:
        if (len)
            return ST_BAD_LENGTH;
        return read_shape(out, out_len);
    case OP_FORWARD:
        return read_op(rx, len, out, out_len, 0);
    case OP_BACKWARD:
        return read_op(rx, len, out, out_len, 1);
    case OP_UPDATE:
        return update(rx, len);
    case OP_PULSE:
        return pulse(rx, len);
    case OP_COUNTERS:
        return read_counters(rx, len, out, out_len);
#if HAVE_TIME
    case OP_SET_PHYSICS:
        return set_physics(rx, len);
    case OP_GET_PHYSICS:
        if (len)
            return ST_BAD_LENGTH;
        return get_physics(out, out_len);
    case OP_ADVANCE:
        return advance(rx, len, out, out_len);
#else /* time and temperature (docs/numerics.md §11): not in this config (config.has_time) */
    case OP_SET_PHYSICS:
        return len == REQ_SET_PHYSICS_FIXED ? ST_BAD_ARGUMENT : ST_BAD_LENGTH;
    case OP_GET_PHYSICS:
        return len == REQ_GET_PHYSICS_FIXED ? ST_BAD_ARGUMENT : ST_BAD_LENGTH;
    case OP_ADVANCE:
        return len == REQ_ADVANCE_FIXED ? ST_BAD_ARGUMENT : ST_BAD_LENGTH;
#endif
    default:
        return ST_UNKNOWN_OPCODE;
    }
}
