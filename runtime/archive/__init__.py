"""Tar archives: safe extraction, deterministic writing, byte-exact layer reassembly."""

from runtime.archive.compression import Compression, decompressed_chunks, detect
from runtime.archive.errors import ArchiveError, DigestMismatch, MalformedArchive
from runtime.archive.extract import (
    ExtractOptions,
    ExtractResult,
    WhiteoutMode,
    extract,
    extract_chunks,
)
from runtime.archive.reader import TarReader
from runtime.archive.tarsplit import TarSplitRecorder, reassemble
from runtime.archive.writer import tar_directory

__all__ = [
    "ArchiveError",
    "Compression",
    "DigestMismatch",
    "ExtractOptions",
    "ExtractResult",
    "MalformedArchive",
    "TarReader",
    "TarSplitRecorder",
    "WhiteoutMode",
    "decompressed_chunks",
    "detect",
    "extract",
    "extract_chunks",
    "reassemble",
    "tar_directory",
]
