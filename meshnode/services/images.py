"""Listing images: each upload decoded and re-encoded as JPEG by a short-lived child process.

What is accepted and how a decode is kept within its memory budget is in
``services/image_codec.py``, the code the child runs. This module is the node's side
(issue 17): ``ImageDecoder`` starts one child at a time, ``python -I -S`` (no environment,
no site), which sets its own address-space and CPU limits before it imports Pillow; the
upload goes to its stdin, the JPEG comes back on its stdout. The node never imports Pillow,
so neither Pillow's libraries (2.3 MB) nor a decode's buffers and heap fragments stay in its
memory, and a decompression bomb or a bug in a C decoder fed untrusted bytes kills a child,
never the node. The cost: a child's start, ~60-70 ms of CPU per upload here (an interpreter
and Pillow's import; a Raspberry Pi is ~5× slower), and ~2 ms of the event loop for the
``vfork``; pages no longer share the GIL with a decoding thread.

How a child's end becomes an answer (``outcome``): a refused image is the typed error the
child names (413, 415); the address-space limit reached while decoding, or SIGXCPU (its CPU
limit), is 413; a crash by any other signal is 415 (an unreadable file), logged; a child the
node killed at its wall-clock ``timeout``, or one the kernel killed (SIGKILL: a memory cgroup's
OOM killer), is 503 with a Retry-After; any other failure (a bug, or SIGSYS from a system-call
filter that refuses ``setrlimit``) raises ``DecoderFailedError``.

What the node keeps of a child's output is bounded (``ChildPipes``): stdout up to
``answer_cap(limits)`` (the largest answer a decode within the limits can give, with margin),
stderr's last ``STDERR_TAIL`` bytes. A child past the cap (one a decoder exploit took over)
is killed and reaped at once and the upload is refused as an unreadable image (415).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import importlib.util
import json
import logging
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import meshnode
from meshnode.errors import BusyError, PayloadTooLargeError, UnsupportedMediaError
from meshnode.protocol.translatable import Text
from meshnode.services.image_codec import (
    ACCEPTED_FORMATS,
    DEFAULT_DECODE_BUDGET,
    DEFAULT_MAX_PIXELS,
    ERRORS,
    MAX_EDGE,
    EncodedImage,
    ImageLimits,
    decode_cost,
    fit_within,
    reencode_image,
)

__all__ = ["ACCEPTED_FORMATS", "DEFAULT_DECODE_BUDGET", "DEFAULT_MAX_PIXELS", "MAX_EDGE",
           "ChildPipes", "DecoderFailedError", "EncodedImage", "ImageDecoder", "ImageLimits",
           "answer_cap", "decode_cost", "fit_within", "map_large_allocations", "outcome",
           "reencode_image"]

log = logging.getLogger(__name__)

DEFAULT_MAX_UPLOADS = 4
# A child's limits. Its address space: the decode budget plus what the interpreter, Pillow's
# libraries and the JPEG encoder map (VmPeak: 27 MiB for a tiny image, 107 MiB = the 80 MiB
# budget + 27 for the worst accepted PNG, here on x86-64; ~3.5 × that margin for other
# platforms' mappings). CPU: the worst accepted image takes ~0.5-1 s here, ~5 s on a
# Raspberry Pi. Wall clock: a busy node's child waits for a core too.
ADDRESS_HEADROOM = 96 * 1024 * 1024
DECODE_CPU_SECONDS = 20
DECODE_TIMEOUT = 60.0
# What the child runs: the node's own copy of meshnode and of Pillow (their sys.path entries,
# joined by os.pathsep, first), whatever the environment says. ``-I`` drops PYTHONPATH, the
# user's site and the current directory; ``-S`` skips ``site`` (2.4 MB per child here: the
# site-packages' .pth files and editable-install finders).
CHILD_CODE = ("import os, sys; sys.path[:0] = sys.argv[1].split(os.pathsep);"
              " from meshnode.services.image_codec import main; sys.exit(main(sys.argv[2:]))")
STDERR_SHOWN = 2000  # characters of a failed child's stderr kept in the log and the error
# What the node keeps of a child's output. stderr: its last 4 KiB (Python's traceback ends
# there). stdout: the answer, one JSON line (well under 64 KiB: a size and dimensions, or a
# refusal's short message) then a JPEG of at most MAX_EDGE² pixels (fewer when max_pixels is
# lower). JPEG_BYTES_PER_PIXEL bounds that JPEG by its raw RGB pixels: the worst measured at
# quality 82, saturated random noise at 1600×1600, is 0.81 bytes per pixel (2.1 MB), so the
# cap (7.7 MB with the defaults) has ~3.7 × margin over it.
STDERR_TAIL = 4096
ANSWER_LINE_MAX = 64 * 1024
JPEG_BYTES_PER_PIXEL = 3


class DecoderFailedError(RuntimeError):
    """The decoding child ended without an answer for a reason no upload explains (a bug)."""


def answer_cap(limits: ImageLimits) -> int:
    """The most bytes a decoding child may write on stdout for an upload within ``limits``."""
    pixels = min(limits.max_pixels, MAX_EDGE * MAX_EDGE)
    return ANSWER_LINE_MAX + pixels * JPEG_BYTES_PER_PIXEL


class ChildPipes(asyncio.SubprocessProtocol):
    """The node's side of one decoding child: what it keeps of its output, and its end.

    Data is kept as it arrives (the pipes are never paused, so a dying child's last bytes
    and its end of file always arrive): stdout up to ``cap`` bytes, beyond which everything is
    dropped (``overflowed``; ``ImageDecoder`` then kills the child); stderr's last
    ``STDERR_TAIL`` bytes. ``exited`` is set once the child is reaped; ``done`` once it is
    reaped with both pipes at their end, or at once when stdout overflows; ``closed`` when
    the transport is finished.
    """

    def __init__(self, cap: int) -> None:
        loop = asyncio.get_running_loop()
        self.cap = cap
        self.stdout: list[bytes] = []
        self.stdout_size = 0
        self.stderr = bytearray()
        self.overflowed = False
        self.exited: asyncio.Future[None] = loop.create_future()
        self.done: asyncio.Future[None] = loop.create_future()
        self.closed: asyncio.Future[None] = loop.create_future()

    def pipe_data_received(self, fd: int, data: bytes | bytearray) -> None:
        """Keep stdout up to the cap, and stderr's tail."""
        if fd == 2:
            self.stderr += data
            del self.stderr[:-STDERR_TAIL]
        elif not self.overflowed:
            self.stdout_size += len(data)
            if self.stdout_size <= self.cap:
                self.stdout.append(bytes(data))
                return
            self.overflowed = True
            self.stdout.clear()
            _settle(self.done)

    def process_exited(self) -> None:
        """The child was reaped (its pipes may still hold its last bytes)."""
        _settle(self.exited)

    def connection_lost(self, exc: Exception | None) -> None:
        """The child was reaped and both pipes reached their end (or were closed)."""
        _settle(self.done)
        _settle(self.closed)

    def output(self) -> bytes:
        """Everything the child wrote on stdout (within the cap)."""
        return b"".join(self.stdout)


def _settle(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def _send(child: asyncio.SubprocessTransport, data: bytes) -> None:
    """Write the upload to the child's stdin, then its end of file (once written).

    A child that exits without reading it breaks the pipe: the transport then drops the rest,
    and the child's exit status says why it ended."""
    stdin = child.get_pipe_transport(0)
    if not isinstance(stdin, asyncio.WriteTransport):
        raise DecoderFailedError("image decoding child started without a stdin pipe")
    stdin.write(data)
    stdin.close()


def child_path() -> str:
    """The sys.path entries a decoding child needs: where this meshnode and Pillow are (found
    without importing Pillow)."""
    entries = [Path(meshnode.__file__).resolve().parents[1]]
    pillow = importlib.util.find_spec("PIL")
    if pillow is not None and pillow.submodule_search_locations:
        entries.append(Path(next(iter(pillow.submodule_search_locations))).resolve().parent)
    return os.pathsep.join(dict.fromkeys(str(entry) for entry in entries))


def child_argv(limits: ImageLimits, *, path: str, address_bytes: int,
               cpu_seconds: int) -> list[str]:
    """The command line of one decoding child (``path``: ``child_path()``)."""
    return [sys.executable, "-I", "-S", "-c", CHILD_CODE, path, str(limits.max_bytes),
            str(limits.max_pixels), str(limits.decode_budget), str(address_bytes),
            str(cpu_seconds)]


def outcome(returncode: int, stdout: bytes, stderr: bytes) -> EncodedImage:
    """The re-encoded image a finished child answered, or the error its end means (see the
    module's docstring)."""
    line, _, rest = stdout.partition(b"\n")
    if returncode == 0 and line:
        header = json.loads(line)
        if "error" in header:
            message = Text(header["template"], **header["values"])
            raise ERRORS.get(header["error"], PayloadTooLargeError)(message)
        if len(rest) == header["size"]:
            log.debug("image decoded: %sx%s, the child's peak %.1f MiB", header["width"],
                      header["height"], header["peak_kib"] / 1024)
            return EncodedImage(data=rest, width=header["width"], height=header["height"],
                                media_type=header["media_type"])
    tail = stderr.decode(errors="replace")[-STDERR_SHOWN:]
    if returncode == -signal.SIGXCPU:
        raise PayloadTooLargeError("image too costly to decode here; send a smaller image")
    if returncode == -signal.SIGSYS:  # a seccomp filter (a systemd unit's) refused a call
        raise DecoderFailedError(f"image decoding child stopped by a system-call filter"
                                 f" (SIGSYS; see scripts/meshnode.service): {tail}")
    if returncode == -signal.SIGKILL:
        raise BusyError("the node is short of memory for images; try again later",
                        retry_after=30)
    if returncode < 0:
        log.warning("image decoding child killed by %s: %s", signal.Signals(-returncode).name,
                    tail)
        raise UnsupportedMediaError("the file is not a readable image")
    raise DecoderFailedError(f"image decoding child exited with {returncode}: {tail}")


M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter number
MMAP_THRESHOLD = 1024 * 1024


def map_large_allocations() -> bool:
    """Have glibc serve every allocation of 1 MiB or more with its own mapping.

    Without this, glibc raises its mmap threshold after the first large block is freed
    (up to 32 MiB), so large blocks (an upload's body, up to ``max_image_bytes``; Pillow's
    16 MiB image blocks when it decoded in the node's process: 20 MB stayed resident after
    one upload) then come from a thread's arena whose top ``malloc_trim`` cannot return.
    With a fixed threshold such a block is unmapped as soon as it is freed. Process-wide:
    called once by ``meshnode run``. False where there is no glibc.
    """
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD))


class ImageDecoder:
    """One decoding child at a time per node, with few uploads waiting.

    Held by the node's ``NodeContext`` (one per application, never a module global).
    ``admit()`` bounds the uploads being received or waiting (each holds up to
    ``max_bytes`` in memory): beyond ``max_uploads`` the upload is refused with 503.
    """

    def __init__(self, limits: ImageLimits, *, max_uploads: int = DEFAULT_MAX_UPLOADS,
                 timeout: float = DECODE_TIMEOUT, cpu_seconds: int = DECODE_CPU_SECONDS,
                 address_bytes: int | None = None) -> None:
        self.limits = limits
        self.max_uploads = max_uploads
        self.timeout = timeout
        self.cpu_seconds = cpu_seconds
        self.address_bytes = address_bytes or limits.decode_budget + ADDRESS_HEADROOM
        self.gate = asyncio.Semaphore(1)
        self.in_flight = 0
        self.waiting = 0
        self.answer_cap = answer_cap(limits)
        self.children: set[asyncio.SubprocessTransport] = set()
        self._path: str | None = None  # child_path(), found at the first upload

    @contextlib.asynccontextmanager
    async def admit(self) -> AsyncIterator[None]:
        """Hold one of the ``max_uploads`` upload slots, or raise BusyError (503)."""
        if self.in_flight >= self.max_uploads:
            raise BusyError(Text("%(count)s images are being processed; try again in a few"
                                 " seconds", count=self.in_flight), retry_after=5)
        self.in_flight += 1
        try:
            yield
        finally:
            self.in_flight -= 1

    async def reencode(self, data: bytes) -> EncodedImage:
        """Re-encode ``data`` within the limits in a child, after the decodes already queued."""
        self.waiting += 1
        try:
            await self.gate.acquire()
        finally:
            self.waiting -= 1
        try:
            return await self._run_child(data)
        finally:
            self.gate.release()

    async def _run_child(self, data: bytes) -> EncodedImage:
        if self._path is None:
            self._path = child_path()
        argv = child_argv(self.limits, path=self._path, address_bytes=self.address_bytes,
                          cpu_seconds=self.cpu_seconds)
        try:
            child, pipes = await asyncio.get_running_loop().subprocess_exec(
                lambda: ChildPipes(self.answer_cap), *argv, stdin=subprocess.PIPE,
                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        except OSError as exc:  # no memory or no process slot to start one: the node is full
            log.warning("cannot start an image decoding child: %s", exc)
            raise BusyError("the node cannot process images right now; try again later",
                            retry_after=30) from exc
        self.children.add(child)
        try:
            _send(child, data)
            async with asyncio.timeout(self.timeout):
                await pipes.done
        except TimeoutError as exc:
            raise BusyError(Text("the image took more than %(seconds)s seconds to process; try"
                                 " again later", seconds=round(self.timeout)),
                            retry_after=30) from exc
        finally:  # ended, overflowed, timed out or cancelled: nothing of the child outlives this
            await self._end(child, pipes)
        stderr = bytes(pipes.stderr)
        if pipes.overflowed:  # only a decoder taken over by the file writes that much
            log.warning("image decoding child wrote more than %s bytes on stdout (killed): %s",
                        self.answer_cap, stderr.decode(errors="replace")[-STDERR_SHOWN:])
            raise UnsupportedMediaError("the file is not a readable image")
        returncode = child.get_returncode()
        if returncode is None:  # cannot happen: ``done`` comes after the child is reaped
            raise DecoderFailedError("image decoding child ended without a status")
        return outcome(returncode, pipes.output(), stderr)

    async def _end(self, child: asyncio.SubprocessTransport, pipes: ChildPipes) -> None:
        """Kill ``child`` if it still runs, wait until it is reaped, then close its pipes (an
        upload not yet written to a stdin nobody reads is dropped)."""
        try:
            if child.get_returncode() is None:
                child.kill()
            await pipes.exited
            stdin = child.get_pipe_transport(0)
            if isinstance(stdin, asyncio.WriteTransport) and stdin.get_write_buffer_size():
                stdin.abort()
            child.close()
            await pipes.closed
        finally:
            self.children.discard(child)

    def close(self) -> None:
        """Kill any decoding child still running (the node is stopping)."""
        for child in self.children:
            if child.get_returncode() is None:
                child.kill()
