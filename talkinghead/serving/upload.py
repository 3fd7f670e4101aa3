"""A multipart/form-data request body streamed straight into a job's folder, with every limit checked
while the bytes arrive: the whole body, the number of parts, the size of text fields and headers.

Files land under names the server chooses (the form field's role), never under the client's file name;
the client's name is kept only as text to show back.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from fastapi.responses import JSONResponse
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import ClientDisconnect

from talkinghead.errors import InputError
from talkinghead.serving import sniff

MAX_FIELD_BYTES = 1024  # an option's value
MAX_HEADER_BYTES = 4096  # one part's headers
MAX_PARTS = 40


class UploadError(Exception):
    """The request body is refused; `status` is the HTTP status to answer with."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def error_response(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    """The API's error body: {"error": {"code", "message"}}."""
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status, headers=headers)


# what an uploaded request can be refused for, once its files are in: `refusal` answers each the same way everywhere
REFUSED = (UploadError, sniff.Unsupported, sniff.TooLarge, InputError)


def refusal(exc: Exception) -> JSONResponse:
    """The answer to one of REFUSED: the upload's own status, 415 for a file of no supported kind, else 422."""
    if isinstance(exc, UploadError):
        return error_response(exc.status, exc.code, exc.message)
    if isinstance(exc, sniff.Unsupported):
        return error_response(415, "unsupported_file", str(exc))
    return error_response(422, "too_large" if isinstance(exc, sniff.TooLarge) else "bad_input", str(exc))


@dataclass
class Upload:
    """What a request body held: text fields, and the files written (role -> path, role -> client name)."""

    fields: dict[str, str] = field(default_factory=dict)
    files: dict[str, Path] = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)


def refuse_declared_oversize(content_length: str, max_bytes: int, max_mb: float) -> None:
    """413 before reading a byte when the request says it is larger than the server takes (the body is
    still counted as it streams: a client may say nothing or lie)."""
    if content_length.isdigit() and int(content_length) > max_bytes:
        raise UploadError(413, "too_large", f"The upload is larger than {max_mb:g} MB, the most this server takes.")


def display_name(name: str) -> str:
    """The client's file name made safe to show (its last component, printable, short); never a path."""
    name = re.split(r"[\\/]", name)[-1]
    name = "".join(c for c in name if c.isprintable() and c not in "\"'<>`")
    return name[:80]


class _Receiver:
    def __init__(self, folder: Path, file_roles: tuple[str, ...]) -> None:
        self.folder, self.roles = folder, file_roles
        self.out = Upload()
        self.parts = 0
        self._header_name = b""
        self._header_value = b""
        self._header_bytes = 0
        self._disposition = b""
        self._name = ""
        self._file: BinaryIO | None = None
        self._text = bytearray()

    def on_part_begin(self) -> None:
        self.parts += 1
        if self.parts > MAX_PARTS:
            raise UploadError(422, "too_many_fields", f"The form has more than {MAX_PARTS} fields.")
        self._disposition, self._header_bytes, self._file, self._text = b"", 0, None, bytearray()

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._grow_header(end - start)
        self._header_name += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._grow_header(end - start)
        self._header_value += data[start:end]

    def _grow_header(self, n: int) -> None:
        self._header_bytes += n
        if self._header_bytes > MAX_HEADER_BYTES:
            raise UploadError(422, "bad_form", "A part of the form has oversized headers.")

    def on_header_end(self) -> None:
        if self._header_name.lower() == b"content-disposition":
            self._disposition = self._header_value
        self._header_name, self._header_value = b"", b""

    def on_headers_finished(self) -> None:
        _, params = parse_options_header(self._disposition)
        name = params.get(b"name", b"").decode("utf-8", "replace")
        if not name:
            raise UploadError(422, "bad_form", "A part of the form has no field name.")
        self._name = name
        if b"filename" in params:
            if name not in self.roles:
                raise UploadError(
                    422,
                    "unexpected_file",
                    f"The file field '{display_name(name)}' is not expected; send {' and '.join(self.roles)}.",
                )
            if name in self.out.files:
                raise UploadError(422, "duplicate_file", f"The form holds more than one '{name}' file.")
            path = self.folder / name  # the role, never the client's name
            self._file = open(path, "wb")  # noqa: SIM115 (closed in on_part_end or by close())
            self.out.files[name] = path
            self.out.names[name] = display_name(params[b"filename"].decode("utf-8", "replace"))

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self._file is not None:
            self._file.write(data[start:end])
            return
        if len(self._text) + end - start > MAX_FIELD_BYTES:
            raise UploadError(422, "bad_option", f"The value of '{display_name(self._name)}' is too long.")
        self._text += data[start:end]

    def on_part_end(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        else:
            if self._name in self.out.fields:
                raise UploadError(422, "bad_option", f"The option '{display_name(self._name)}' is given twice.")
            self.out.fields[self._name] = self._text.decode("utf-8", "replace")

    def close(self) -> None:
        if self._file is not None:
            self._file.close()


async def receive_form(
    content_type: str, chunks: AsyncIterator[bytes], folder: Path, limit: int, file_roles: tuple[str, ...]
) -> Upload:
    """Parse a multipart body from `chunks` into `folder`; UploadError past `limit` bytes or on a bad form.
    On error the caller removes `folder` (nothing of a refused upload is kept)."""
    kind, params = parse_options_header(content_type)
    if kind != b"multipart/form-data" or b"boundary" not in params:
        raise UploadError(415, "not_multipart", "Send the job as multipart/form-data (a form with files).")
    rx = _Receiver(folder, file_roles)
    callbacks = {
        name: getattr(rx, name)
        for name in (
            "on_part_begin",
            "on_part_data",
            "on_part_end",
            "on_header_field",
            "on_header_value",
            "on_header_end",
            "on_headers_finished",
        )
    }
    parser = MultipartParser(params[b"boundary"], callbacks)  # type: ignore[arg-type]
    total = 0
    try:
        async for chunk in chunks:
            total += len(chunk)
            if total > limit:
                raise UploadError(
                    413, "too_large", f"The upload is larger than {limit / 2**20:g} MB, the most this server takes."
                )
            parser.write(chunk)
        parser.finalize()
    except FormParserError:
        raise UploadError(422, "bad_form", "The form data is malformed.") from None
    except ClientDisconnect:
        raise UploadError(400, "disconnected", "The upload was cut off before it ended.") from None
    finally:
        rx.close()
    return rx.out
