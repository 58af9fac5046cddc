/* The byte link of docs/protocol.md: frame reception with resynchronisation and the byte
 * timeout, CRC-32, the reply cache, and the main loop. Byte for byte the reference device's
 * (emulator/executor.py with protocol.FrameParser). */
#include "firmware.h"

/* received payload; the reply frame, kept as the reply cache */
static u8 rx_payload[MAX_PAYLOAD] SPRAM;
static u8 reply[HEADER_SIZE + MAX_PAYLOAD + CRC_SIZE] SPRAM;
static u32 reply_size;
/* (opcode, seq, crc) of the last frame answered at command level; valid once one was */
static u32 cached_opcode, cached_seq, cached_crc, cache_valid;

/* the next byte of a frame, or -1 once the line has been silent for the byte timeout */
static inline i32 next_byte(void)
{
    u32 v = IO(IO_RX_TIMED);
    return v & 0x100 ? (i32)(v & 0xff) : -1;
}

/* Send the frame f: the sync, the body f[2 .. 2 + body) and its CRC (the link's CRC unit
 * sums the bytes sent), which is also stored after the body. */
static void send_frame(u8 *f, u32 body)
{
    IO(IO_TX) = SYNC0;
    IO(IO_TX) = SYNC1;
    IO(IO_CRC) = CRC_INIT;
    for (u32 k = 2; k < 2 + body; k++)
        IO(IO_TX) = f[k];
    put_u(f + 2 + body, 4, IO(IO_CRC) ^ CRC_XOROUT);
    for (u32 k = 2 + body; k < 6 + body; k++)
        IO(IO_TX) = f[k];
}

static void put_header(u8 *f, u32 opcode, u32 seq, u32 n)
{
    f[0] = SYNC0;
    f[1] = SYNC1;
    f[2] = (u8)(opcode | REPLY_FLAG);
    f[3] = (u8)seq;
    f[4] = (u8)n;
    f[5] = (u8)(n >> 8);
}

/* a link-level error reply: the status alone, never cached (the cache stays intact) */
static void send_status(u32 opcode, u32 seq, u32 status)
{
    u8 f[HEADER_SIZE + 1 + CRC_SIZE];
    put_header(f, opcode, seq, 1);
    f[HEADER_SIZE] = (u8)status;
    send_frame(f, HEADER_SIZE - 2 + 1);
}

/* Receive one frame and answer it (or drop garbage and a partial header silently). */
static void serve_frame(void)
{
    i32 b;
    u8 head[4];
    /* hunt: drop bytes until A5 5A; A5 A5 5A syncs on the second A5; the line may rest */
    do
        b = (i32)(IO(IO_RX_WAIT) & 0xff);
    while (b != SYNC0);
    for (;;) {
        b = next_byte();
        if (b == SYNC1)
            break;
        if (b != SYNC0) /* another byte, or silence: hunt again */
            return;
    }
    IO(IO_CRC) = CRC_INIT; /* the CRC covers the bytes after the sync */
    for (u32 k = 0; k < 4; k++) {
        if ((b = next_byte()) < 0)
            return; /* silence inside the header: dropped without a reply */
        head[k] = (u8)b;
    }
    u32 opcode = head[0], seq = head[1], len = head[2] | (u32)head[3] << 8;
    if (len > MAX_PAYLOAD) {
        send_status(opcode, seq, ST_TOO_LONG);
        return;
    }
    for (u32 k = 0; k < len; k++) {
        if ((b = next_byte()) < 0) {
            send_status(opcode, seq, ST_TRUNCATED);
            return;
        }
        rx_payload[k] = (u8)b;
    }
    u32 crc = IO(IO_CRC), got = 0;
    for (u32 k = 0; k < 4; k++) {
        if ((b = next_byte()) < 0) {
            send_status(opcode, seq, ST_TRUNCATED);
            return;
        }
        got |= (u32)b << (8 * k);
    }
    if (got != (crc ^ CRC_XOROUT)) {
        send_status(opcode, seq, ST_BAD_CRC);
        return;
    }
    if (!(cache_valid && opcode == cached_opcode && seq == cached_seq && got == cached_crc)) {
        u32 n;
        u32 status = execute(opcode, rx_payload, len, reply + HEADER_SIZE + 1, &n);
        n = status == ST_OK ? n + 1 : 1;
        reply[HEADER_SIZE] = (u8)status;
        put_header(reply, opcode, seq, n);
        send_frame(reply, HEADER_SIZE - 2 + n);
        reply_size = HEADER_SIZE + n + CRC_SIZE;
        cached_opcode = opcode;
        cached_seq = seq;
        cached_crc = got;
        cache_valid = 1;
        return;
    }
    for (u32 k = 0; k < reply_size; k++) /* a retransmission: the cached reply, as it was */
        IO(IO_TX) = reply[k];
}

void main(void)
{
    chip_power_up();
    cache_valid = 0;
    for (;;)
        serve_frame();
}
