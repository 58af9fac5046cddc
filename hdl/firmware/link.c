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

/* CRC-32/ISO-HDLC, reflected, four bits at a time */
static const u32 crc_nibble[16] = {
    0x00000000u, 0x1db71064u, 0x3b6e20c8u, 0x26d930acu, 0x76dc4190u, 0x6b6b51f4u,
    0x4db26158u, 0x5005713cu, 0xedb88320u, 0xf00f9344u, 0xd6d6a3e8u, 0xcb61b38cu,
    0x9b64c2b0u, 0x86d3d2d4u, 0xa00ae278u, 0xbdbdf21cu,
};

static inline u32 crc_byte(u32 crc, u32 byte)
{
    crc ^= byte;
    crc = (crc >> 4) ^ crc_nibble[crc & 15];
    return (crc >> 4) ^ crc_nibble[crc & 15];
}

/* the next byte of a frame, or -1 once the line has been silent for the byte timeout */
static inline i32 next_byte(void)
{
    u32 v = IO(IO_RX_TIMED);
    return v & 0x100 ? (i32)(v & 0xff) : -1;
}

static void send(const u8 *p, u32 n)
{
    for (u32 k = 0; k < n; k++)
        IO(IO_TX) = p[k];
}

/* header and CRC around reply[HEADER_SIZE .. HEADER_SIZE + n) */
static void seal(u32 opcode, u32 seq, u32 n)
{
    reply[0] = SYNC0;
    reply[1] = SYNC1;
    reply[2] = (u8)(opcode | REPLY_FLAG);
    reply[3] = (u8)seq;
    reply[4] = (u8)n;
    reply[5] = (u8)(n >> 8);
    u32 crc = CRC_INIT;
    for (u32 k = 2; k < HEADER_SIZE + n; k++)
        crc = crc_byte(crc, reply[k]);
    put_u(reply + HEADER_SIZE + n, 4, crc ^ CRC_XOROUT);
    reply_size = HEADER_SIZE + n + CRC_SIZE;
}

/* a link-level error reply: the status alone, never cached (the cache stays intact) */
static void send_status(u32 opcode, u32 seq, u32 status)
{
    u8 f[HEADER_SIZE + 1 + CRC_SIZE] = {SYNC0, SYNC1, (u8)(opcode | REPLY_FLAG), (u8)seq, 1, 0,
                                        (u8)status};
    u32 crc = CRC_INIT;
    for (u32 k = 2; k < HEADER_SIZE + 1; k++)
        crc = crc_byte(crc, f[k]);
    put_u(f + HEADER_SIZE + 1, 4, crc ^ CRC_XOROUT);
    send(f, sizeof(f));
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
    u32 crc = CRC_INIT;
    for (u32 k = 0; k < 4; k++) {
        if ((b = next_byte()) < 0)
            return; /* silence inside the header: dropped without a reply */
        head[k] = (u8)b;
        crc = crc_byte(crc, (u32)b);
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
        crc = crc_byte(crc, (u32)b);
    }
    u32 got = 0;
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
        reply[HEADER_SIZE] = (u8)status;
        seal(opcode, seq, status == ST_OK ? n + 1 : 1);
        cached_opcode = opcode;
        cached_seq = seq;
        cached_crc = got;
        cache_valid = 1;
    }
    send(reply, reply_size); /* a retransmission gets the cached reply, byte for byte */
}

void main(void)
{
    chip_power_up();
    cache_valid = 0;
    for (;;)
        serve_frame();
}
