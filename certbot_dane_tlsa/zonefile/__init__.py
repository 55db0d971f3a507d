"""Format-preserving, streaming editor for BIND master files (TLSA RRsets and SOA serial)."""

from certbot_dane_tlsa.zonefile.editor import RRsetChange, ZoneEdit, plan_zone_edit, read_tlsa
from certbot_dane_tlsa.zonefile.safe_write import (
    Backup,
    ZoneLock,
    clean_stale_temp_files,
    discard_candidate,
    install_candidate,
    write_candidate,
)
from certbot_dane_tlsa.zonefile.serial import (
    SERIAL_METHODS,
    detect_format,
    next_serial,
    serial_add,
    serial_gt,
)

__all__ = [
    "SERIAL_METHODS",
    "Backup",
    "RRsetChange",
    "ZoneEdit",
    "ZoneLock",
    "clean_stale_temp_files",
    "detect_format",
    "discard_candidate",
    "install_candidate",
    "next_serial",
    "plan_zone_edit",
    "read_tlsa",
    "serial_add",
    "serial_gt",
    "write_candidate",
]
