"""Sanity checks of a LAS/LAZ file's raw header before laspy reads it.

laspy trusts the header: a damaged VLR count makes it loop for minutes, and a point count larger
than the file holds makes it allocate and read for as long. These checks bound every count by the
bytes that can hold it (LAS 1.0-1.4 header layout, LAZ chunk table), in microseconds.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from pcseg.errors import PointCloudFormatError

VLR_HEADER = 54  # bytes of a VLR header (reserved, user id, record id, length, description)
EVLR_HEADER = 60


@dataclass
class LasLayout:
    """What the raw header says: point count, bytes per record, compressed (LAZ) or not."""

    points: int
    record_size: int
    compressed: bool


def check_las_layout(path) -> LasLayout:
    """Check the header of ``path`` against its size; PointCloudFormatError naming it otherwise."""
    where = str(path)
    with open(path, "rb") as fh:
        head = fh.read(375)
        size = fh.seek(0, 2)

        def refuse(why: str):
            return PointCloudFormatError(f"{where}: damaged LAS/LAZ header: {why} (the file holds {size} bytes)")

        if len(head) < 227 or head[:4] != b"LASF":
            raise PointCloudFormatError(f"{where}: not a LAS/LAZ file (no LASF signature or a header under 227 bytes)")
        minor = head[25]
        header_size, offset, vlrs = struct.unpack_from("<HII", head, 94)
        point_format, record_size, legacy_count = struct.unpack_from("<BHI", head, 104)
        count = legacy_count
        if minor >= 4 and len(head) >= 255:
            count = struct.unpack_from("<Q", head, 247)[0] or legacy_count
            first_evlr, evlrs = struct.unpack_from("<QI", head, 235)
            if evlrs and (first_evlr > size or evlrs * EVLR_HEADER > size - first_evlr):
                raise refuse(f"{evlrs} extended VLRs cannot start at byte {first_evlr}")
        if header_size < 227 or offset < header_size or offset > size:
            raise refuse(f"header size {header_size} / point data offset {offset} are incoherent")
        if vlrs * VLR_HEADER > offset - header_size:
            raise refuse(f"{vlrs} VLRs cannot fit between the header and the points at byte {offset}")
        compressed = bool(point_format & 0xC0)
        if record_size == 0 and count:
            raise refuse("point records of 0 bytes")
        if not compressed:
            if offset + count * record_size > size:
                raise refuse(f"it promises {count} points of {record_size} bytes from byte {offset}")
            return LasLayout(count, record_size, False)
        chunk_size = _laszip_chunk_size(fh, header_size, vlrs, offset)
        if count and chunk_size:
            fh.seek(offset)
            raw = fh.read(8)
            table = struct.unpack("<q", raw)[0] if len(raw) == 8 else -1
            if table == -1 and size >= 8:  # written at the very end when the writer could not seek back
                fh.seek(size - 8)
                table = struct.unpack("<q", fh.read(8))[0]
            if not offset + 8 <= table <= size - 8:
                raise refuse(f"the LAZ chunk table offset {table} lies outside the point data")
            fh.seek(table)
            chunks = struct.unpack("<II", fh.read(8))[1]  # (version, number of chunks)
            # every chunk starts with one uncompressed point record
            if chunks * record_size > table - offset - 8 or count > chunks * chunk_size:
                raise refuse(f"{count} points cannot fit in {chunks} LAZ chunks of {chunk_size} points")
        return LasLayout(count, record_size, True)


def _laszip_chunk_size(fh, header_size: int, vlrs: int, offset: int) -> int:
    """Points per LAZ chunk from the laszip VLR; 0 when variable or absent (no check then)."""
    position = header_size
    for _ in range(vlrs):
        fh.seek(position)
        raw = fh.read(VLR_HEADER)
        if len(raw) < VLR_HEADER:
            return 0
        user, record, length = raw[2:18].split(b"\0")[0], *struct.unpack_from("<HH", raw, 18)
        if user == b"laszip encoded" and record == 22204 and length >= 16:
            data = fh.read(16)
            if len(data) < 16:
                return 0
            chunk = struct.unpack_from("<I", data, 12)[0]
            return 0 if chunk == 0xFFFFFFFF else chunk
        position += VLR_HEADER + length
        if position > offset:
            return 0
    return 0
