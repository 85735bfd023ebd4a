#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Write a 64 MiB raw disk image with an MBR of four Linux partitions
(16, 8, 8 and 8 MiB) for the in-use VM case: the guest's nvme namespace."""
import struct
import sys

SECTOR = 512
PARTS = [(2048, 32768), (34816, 16384), (51200, 16384), (67584, 16384)]

with open(sys.argv[1], "wb") as f:
    f.truncate(64 << 20)
    mbr = bytearray(SECTOR)
    for i, (start, size) in enumerate(PARTS):
        # status, CHS first (unused), type 0x83, CHS last (unused), LBA, count
        mbr[446 + 16 * i:446 + 16 * (i + 1)] = struct.pack(
            "<B3sB3sII", 0, b"\xfe\xff\xff", 0x83, b"\xfe\xff\xff", start, size)
    mbr[510:512] = b"\x55\xaa"
    f.seek(0)
    f.write(mbr)
