"""Image decoding within a memory bound: the cost estimate, the queue, the measured peaks."""

from __future__ import annotations

import asyncio
import gc
import io
import json
import logging
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from PIL import Image

from meshnode.errors import BusyError, PayloadTooLargeError, UnsupportedMediaError
from meshnode.services import images
from meshnode.services.image_codec import answer
from meshnode.services.images import (
    DEFAULT_DECODE_BUDGET,
    STDERR_TAIL,
    ChildPipes,
    DecoderFailedError,
    ImageDecoder,
    ImageLimits,
    answer_cap,
    decode_cost,
    fit_within,
    outcome,
    reencode_image,
)

MB = 1024 * 1024


def encoded(mode: str, size: tuple[int, int], fmt: str, **options: object) -> bytes:
    colour: object = 3 if mode == "P" else (10, 200, 30, 128)[: len(mode)]
    out = io.BytesIO()
    Image.new(mode, size, colour).save(out, format=fmt, **options)  # type: ignore[arg-type]
    return out.getvalue()


def test_fit_within__keeps_the_aspect_and_never_enlarges() -> None:
    assert fit_within(6000, 4000) == (1600, 1067)
    assert fit_within(24000, 1000) == (1600, 67)
    assert fit_within(800, 600) == (800, 600)


def test_decode_cost__alpha_and_palette_cost_more_than_plain_rgb() -> None:
    rgb = decode_cost(3000, 3000, "RGB", alpha=False)
    assert decode_cost(3000, 3000, "RGBA", alpha=True) > rgb
    assert decode_cost(3000, 3000, "P", alpha=True) > rgb
    assert decode_cost(3000, 3000, "L", alpha=False) < rgb


def test_reencode__png_over_the_decode_budget_is_refused_before_decoding() -> None:
    # Given a 12 Mpx RGBA PNG of a few kilobytes, estimated above the 80 MiB budget
    data = encoded("RGBA", (4000, 3000), "PNG")
    assert decode_cost(4000, 3000, "RGBA", alpha=True) > DEFAULT_DECODE_BUDGET
    # Then it is refused with the size in the message
    with pytest.raises(PayloadTooLargeError, match="4000×3000"):
        reencode_image(data, ImageLimits(max_bytes=5 * MB))


def test_reencode__a_24_mpx_jpeg_is_reduced_on_load_and_accepted() -> None:
    data = encoded("RGB", (6000, 4000), "JPEG")
    image = reencode_image(data, ImageLimits(max_bytes=5 * MB))
    assert (image.width, image.height) == (1600, 1067)


async def test_image_decoder__uploads_queue_for_one_decode_at_a_time() -> None:
    decoder = ImageDecoder(ImageLimits(max_bytes=5 * MB))
    data = encoded("RGB", (2000, 1500), "PNG")
    # Given the decoder busy
    await decoder.gate.acquire()
    tasks = [asyncio.create_task(decoder.reencode(data)) for _ in range(3)]
    for _ in range(100):
        await asyncio.sleep(0)
    # Then the three wait their turn, none decoding
    assert decoder.waiting == 3
    assert not any(task.done() for task in tasks)
    decoder.gate.release()
    results = await asyncio.gather(*tasks)
    assert [(r.width, r.height) for r in results] == [(1600, 1200)] * 3
    assert decoder.waiting == 0
    decoder.close()


# Each case is decoded in a child process whose peak RSS (VmHWM) is reset first; the
# measured peak must not exceed the estimate the decoder judged it by (plus 8 MB for the
# JPEG encoder and the libraries' first-use allocations).
MEASURE = textwrap.dedent("""
    import io, json, sys
    from pathlib import Path
    from PIL import Image
    from meshnode.services import image_codec as images

    def status(key):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024

    data = sys.stdin.buffer.read()
    limits = images.ImageLimits(max_bytes=10**8, decode_budget=10**10)
    with images._open(data) as probe:
        full = probe.width * probe.height
        if probe.format == "JPEG":
            probe.draft("RGB", images.fit_within(probe.width, probe.height))
        estimate = images._estimate(probe, full)
    images.reencode_image(data, limits)  # warm up the codec's one-time allocations
    Path("/proc/self/clear_refs").write_text("5")
    before = status("VmRSS")
    images.reencode_image(data, limits)
    print(json.dumps({"peak": status("VmHWM") - before, "estimate": estimate}))
""")

PEAK_CASES = {
    "png-rgb": ("RGB", (3000, 3000), "PNG", {}),
    "png-rgba": ("RGBA", (2500, 2500), "PNG", {}),
    "png-palette-transparent": ("P", (3000, 3000), "PNG", {"transparency": 3}),
    "gif": ("P", (3000, 3000), "GIF", {}),
    "webp": ("RGB", (2000, 2000), "WEBP", {}),
    "jpeg-3199-square": ("RGB", (3199, 3199), "JPEG", {}),
    "jpeg-progressive-444": ("RGB", (3000, 2000), "JPEG", {"progressive": True,
                                                            "subsampling": 0}),
    "jpeg-progressive-420": ("RGB", (6000, 4000), "JPEG", {"progressive": True}),
    "jpeg-cmyk": ("CMYK", (4000, 3000), "JPEG", {}),
}


@pytest.mark.parametrize("case", sorted(PEAK_CASES))
def test_decode_cost__is_not_below_the_measured_peak(case: str) -> None:
    mode, size, fmt, options = PEAK_CASES[case]
    result = subprocess.run([sys.executable, "-c", MEASURE], input=encoded(mode, size, fmt,
                            **options), capture_output=True, check=True, timeout=120)
    measured = json.loads(result.stdout)
    assert measured["peak"] <= measured["estimate"] + 8 * MB, measured


RELEASE = textwrap.dedent("""
    import asyncio, sys
    from pathlib import Path
    from meshnode.services import images

    def rss():
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024

    images.map_large_allocations()  # what `meshnode run` does at start
    data = sys.stdin.buffer.read()

    async def main():
        decoder = images.ImageDecoder(images.ImageLimits(max_bytes=10**8))
        before = rss()
        await decoder.reencode(data)
        print(rss() - before, "PIL" in sys.modules)

    asyncio.run(main())
""")


def test_image_decoder__the_nodes_process_never_imports_pillow_nor_keeps_the_decode() -> None:
    # Given a 12.7 Mpx PNG whose decode peaks near 80 MB
    data = encoded("RGB", (3564, 3564), "PNG")
    # When the node's decoder has re-encoded it (in its child)
    result = subprocess.run([sys.executable, "-c", RELEASE], input=data, capture_output=True,
                            check=True, timeout=120)
    grown, pillow = result.stdout.split()
    # Then the node's process holds less than 8 MB more than before (it kept 18-27 MB in a
    # thread arena when it decoded in-process) and never imported Pillow
    assert int(grown) < 8 * MB
    assert pillow == b"False"


ONLY_OUR_PLUGINS = textwrap.dedent("""
    import json, sys
    from meshnode.errors import UnsupportedMediaError
    from meshnode.services.images import ImageLimits, reencode_image
    answers = {}
    for name, data in json.loads(sys.stdin.read()).items():
        try:
            answers[name] = reencode_image(bytes.fromhex(data), ImageLimits(10**7)).width
        except UnsupportedMediaError as error:
            answers[name] = str(error)
    plugins = sorted(m for m in sys.modules if m.startswith("PIL.") and m.endswith("Plugin"))
    print(json.dumps({"answers": answers, "plugins": plugins}))
""")


def test_reencode__a_webp_or_an_odd_file_loads_only_the_plugins_we_accept() -> None:
    # Given a WebP, a GIF, a BMP and a TIFF, made before the node's process starts
    files = {fmt: encoded("RGB", (40, 30), fmt).hex() for fmt in ("WEBP", "GIF", "BMP", "TIFF")}
    # When a fresh process re-encodes each of them
    result = subprocess.run([sys.executable, "-c", ONLY_OUR_PLUGINS], input=json.dumps(files),
                            capture_output=True, check=True, text=True, timeout=120)
    seen = json.loads(result.stdout)
    # Then WebP and GIF are accepted, BMP refused by name and TIFF as unreadable
    assert seen["answers"] == {"WEBP": 40, "GIF": 40,
                               "BMP": "unsupported image type BMP; use JPEG, PNG, WebP or GIF",
                               "TIFF": "the file is not a readable image"}
    # And Pillow loaded the plugins of its preinit and WebP's, not all 43 of them (3.2 MB;
    # JPEG's imports TIFF's and MPO's, for EXIF and multi-picture files)
    assert set(seen["plugins"]) <= {f"PIL.{name}ImagePlugin" for name in (
        "Bmp", "Gif", "Jpeg", "Ppm", "Png", "WebP", "Tiff", "Mpo")}


def test_reencode__webps_plugin_is_loaded_by_the_first_webp_only() -> None:
    # Given a PNG and a JPEG, When a fresh process re-encodes them
    files = {fmt: encoded("RGB", (40, 30), fmt).hex() for fmt in ("PNG", "JPEG")}
    result = subprocess.run([sys.executable, "-c", ONLY_OUR_PLUGINS], input=json.dumps(files),
                            capture_output=True, check=True, text=True, timeout=120)
    seen = json.loads(result.stdout)
    # Then both are accepted and WebP's plugin (and libwebp) was not loaded
    assert seen["answers"] == {"PNG": 40, "JPEG": 40}
    assert "PIL.WebPImagePlugin" not in seen["plugins"]


# Children that misbehave on purpose (``CHILD_CODE`` replaced): argv[1] is the node's copy of
# meshnode and Pillow's directory, the last argument the CPU seconds.
BOOT = "import os, sys; sys.path[:0] = sys.argv[1].split(os.pathsep); "
SPIN = BOOT + ("from meshnode.services.image_codec import limit_resources;"
               " limit_resources(2**34, int(sys.argv[-1]))\nwhile True: pass")
SLEEP = "import time; time.sleep(120)"


async def test_image_decoder__a_decode_past_the_address_limit_is_413_not_a_dead_node() -> None:
    # Given a decoder whose budget lets a 9 Mpx PNG through but whose children may map 48 MB
    decoder = ImageDecoder(ImageLimits(max_bytes=10**8, decode_budget=10**10),
                           address_bytes=48 * MB)
    # When it decodes one (36 MB for its pixels alone)
    with pytest.raises(PayloadTooLargeError, match="too large to process here"):
        await decoder.reencode(encoded("RGB", (3000, 3000), "PNG"))
    # Then the child ran out of address space, not the node: a small image still decodes
    assert (await decoder.reencode(encoded("RGB", (40, 30), "PNG"))).width == 40


async def test_image_decoder__a_child_past_its_cpu_limit_is_413(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a child that spins after setting its CPU limit to one second
    monkeypatch.setattr(images, "CHILD_CODE", SPIN)
    decoder = ImageDecoder(ImageLimits(max_bytes=MB), cpu_seconds=1)
    # When it decodes, Then the kernel's SIGXCPU ends it and the upload is refused
    with pytest.raises(PayloadTooLargeError, match="too costly to decode"):
        await decoder.reencode(b"anything")
    assert not decoder.children


async def wait_for_pid(path: Path) -> int:
    for _ in range(600):
        if path.exists() and (text := path.read_text().strip()):  # noqa: ASYNC240
            return int(text)
        await asyncio.sleep(0.05)
    raise AssertionError("the child never started")


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


async def test_image_decoder__a_child_past_the_timeout_is_killed_and_the_upload_503(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a child that never answers and a decoder waiting 0.5 s for it
    monkeypatch.setattr(images, "CHILD_CODE", SLEEP)
    decoder = ImageDecoder(ImageLimits(max_bytes=MB), timeout=0.5)
    # When an upload is decoded, Then it is refused as busy, to be retried
    with pytest.raises(BusyError, match="took more than") as caught:
        await decoder.reencode(b"anything")
    assert caught.value.retry_after == 30
    # And the child was killed and reaped
    assert not decoder.children


async def test_image_decoder__a_cancelled_upload_kills_its_child(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
) -> None:
    # Given a child that writes its pid to a file, then never answers
    pid_file = tmp_path / "pid"
    monkeypatch.setattr(images, "CHILD_CODE", "import os, sys, time;"
                        f" open({str(pid_file)!r}, 'w').write(str(os.getpid())); time.sleep(120)")
    decoder = ImageDecoder(ImageLimits(max_bytes=MB))
    upload = asyncio.create_task(decoder.reencode(b"anything"))
    pid = await wait_for_pid(pid_file)
    # When the upload is cancelled (the member went away, the node stops)
    upload.cancel()
    with pytest.raises(asyncio.CancelledError):
        await upload
    # Then the child is gone and the decoder free for the next upload
    assert gone(pid)
    assert not decoder.children
    assert not decoder.gate.locked()


def flooding_child(pid_file: Path, stream: str) -> str:
    """A child that writes its pid to ``pid_file``, then writes to ``stream`` for ever."""
    return ("import os, sys;"
            f" open({str(pid_file)!r}, 'w').write(str(os.getpid()))\n"
            f"while True: sys.{stream}.buffer.write(b'x' * 65536)")


async def test_image_decoder__a_child_writing_past_the_answer_cap_is_killed_reaped_and_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    # Given a child taken over (by a decoder exploit, say) that floods its stdout
    pid_file = tmp_path / "pid"
    monkeypatch.setattr(images, "CHILD_CODE", flooding_child(pid_file, "stdout"))
    decoder = ImageDecoder(ImageLimits(max_bytes=MB))
    # When an upload is decoded, Then it is refused as an unreadable image (415), and the
    # log names the cap
    with caplog.at_level(logging.WARNING, logger=images.log.name), \
            pytest.raises(UnsupportedMediaError):
        await decoder.reencode(b"anything")
    assert f"more than {decoder.answer_cap} bytes" in caplog.text
    # And the child was killed and reaped, its pipes closed, the decoder free
    assert gone(int(pid_file.read_text()))
    assert not decoder.children
    assert not decoder.gate.locked()
    gc.collect()  # an unclosed transport would warn here (run with -W error::ResourceWarning)
    # And the next upload, decoded by a real child, works
    monkeypatch.undo()
    assert (await decoder.reencode(encoded("RGB", (40, 30), "PNG"))).width == 40


async def test_image_decoder__a_child_flooding_stderr_is_judged_by_its_stdout(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a child that writes 8 MB of noise on stderr, then decodes as usual
    monkeypatch.setattr(images, "CHILD_CODE", BOOT + (
        "sys.stderr.write('x' * 8_000_000); sys.stderr.flush();"
        " from meshnode.services.image_codec import main; sys.exit(main(sys.argv[2:]))"))
    decoder = ImageDecoder(ImageLimits(max_bytes=MB))
    # When an upload is decoded, Then its answer on stdout is what counts
    assert (await decoder.reencode(encoded("RGB", (40, 30), "PNG"))).width == 40
    assert not decoder.children


async def test_image_decoder__a_failed_childs_error_shows_the_tail_of_its_stderr(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a child that writes 8 MB on stderr, ending with the reason, then exits with 3
    monkeypatch.setattr(images, "CHILD_CODE", "import sys; sys.stderr.write('x' * 8_000_000"
                        " + 'the reason'); sys.stderr.flush(); raise SystemExit(3)")
    decoder = ImageDecoder(ImageLimits(max_bytes=MB))
    # Then the error names the exit status and ends with the reason, not the 8 MB
    with pytest.raises(DecoderFailedError, match="exited with 3") as caught:
        await decoder.reencode(b"anything")
    message = str(caught.value)
    assert message.endswith("the reason")
    assert len(message) < images.STDERR_SHOWN + 100


async def test_child_pipes__keep_stderrs_tail_and_stdout_up_to_the_cap() -> None:
    # Given the node's side of a child's pipes with a 100 kB cap on stdout
    pipes = ChildPipes(cap=100_000)
    # When the child writes 1 MB on stderr, then 60 + 40 kB on stdout
    for index in range(16):
        pipes.pipe_data_received(2, bytes([index]) * 65536)
    pipes.pipe_data_received(1, b"a" * 60_000)
    pipes.pipe_data_received(1, b"b" * 40_000)
    # Then only stderr's last STDERR_TAIL bytes are kept, and stdout whole (at the cap)
    assert bytes(pipes.stderr) == bytes([15]) * STDERR_TAIL
    assert pipes.output() == b"a" * 60_000 + b"b" * 40_000
    assert not pipes.overflowed
    assert not pipes.done.done()
    # When one more byte comes on stdout, Then the output is dropped and the wait ends
    pipes.pipe_data_received(1, b"c")
    assert pipes.overflowed
    assert pipes.output() == b""
    assert pipes.done.done()
    pipes.pipe_data_received(1, b"d" * 65536)
    assert pipes.output() == b""


def test_answer_cap__holds_the_largest_answer_a_decode_gives() -> None:
    # Given the costliest picture to encode as JPEG: saturated random noise, 1600 px square
    noise = bytes(255 if byte & 1 else 0 for byte in os.urandom(1600 * 1600 * 3))
    out = io.BytesIO()
    Image.frombytes("RGB", (1600, 1600), noise).save(out, format="PNG", compress_level=1)
    limits = ImageLimits(max_bytes=10**8)
    # When the child's code answers for it
    whole = answer(out.getvalue(), limits)
    # Then the answer (0.8 bytes per pixel here) is within the cap, with margin
    assert b'"error"' not in whole.partition(b"\n")[0]
    assert 2 * len(whole) < answer_cap(limits)
    # And a lower pixel limit lowers the cap
    assert answer_cap(ImageLimits(max_bytes=10**8, max_pixels=1_000_000)) < answer_cap(limits)


@pytest.mark.parametrize(("code", "error"), [
    ("import os, signal; os.kill(os.getpid(), signal.SIGSEGV)", UnsupportedMediaError),
    ("import os, signal; os.kill(os.getpid(), signal.SIGKILL)", BusyError),
    ("raise SystemExit(3)", DecoderFailedError),
    ("import os, signal; os.kill(os.getpid(), signal.SIGSYS)", DecoderFailedError),
    ("import sys; sys.stdout.write('{\"width\": 1, \"height\": 1, \"size\": 9}\\nshort')",
     DecoderFailedError),
])
async def test_image_decoder__a_child_that_crashes_or_is_killed_gives_a_typed_error(
    monkeypatch: pytest.MonkeyPatch, code: str, error: type[Exception],
) -> None:
    # Given a child that dies by a signal (a decoder bug; the OOM killer), fails or answers
    # a truncated image
    monkeypatch.setattr(images, "CHILD_CODE", code)
    decoder = ImageDecoder(ImageLimits(max_bytes=MB))
    # Then the upload gets the error for that end: 415, 503 or a bug's 500
    with pytest.raises(error):
        await decoder.reencode(b"anything")


def test_outcome__a_refusal_keeps_its_translatable_message() -> None:
    # Given a child's answer refusing an image by its pixel count
    line = json.dumps({"error": "too_large", "template": "at most %(max)s", "values": {
        "max": 5}}).encode()
    # Then the node raises the same typed error with the same template and values
    with pytest.raises(PayloadTooLargeError) as caught:
        outcome(0, line + b"\n", b"")
    message = caught.value.args[0]
    assert (message, message.template, message.values) == ("at most 5", "at most %(max)s",
                                                             {"max": 5})
