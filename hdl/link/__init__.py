"""The host link: UART, framing with CRC-32 and the command processor."""
