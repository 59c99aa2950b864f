"""The text side of a generation: llama-server's ``process_token`` (tools/server/server-context.cpp).

Generated pieces are appended to a byte buffer; nothing is sent while the buffer ends inside
a UTF-8 character (``validate_utf8``); a stop string found in the unsent text (searched from a
window of its length plus the last piece's) truncates the text and ends the stream; text that
ends with a prefix of a stop string is held back until the next piece decides
(``string_find_partial_stop``).  All positions are byte offsets, as the reference's are.
"""

from __future__ import annotations

from collections.abc import Sequence


def valid_utf8_prefix(text: bytes | bytearray) -> int:
    """tools/server/server-common.cpp validate_utf8: the length without a multi-byte
    character cut off at the end (only the last 4 bytes are looked at)."""
    n = len(text)
    for i in range(1, min(4, n) + 1):
        c = text[n - i]
        if (c & 0xE0) == 0xC0 and i < 2 or (c & 0xF0) == 0xE0 and i < 3 or (c & 0xF8) == 0xF0 and i < 4:
            return n - i
    return n


def find_partial_stop(text: bytes | bytearray, stop: bytes) -> int:
    """common/common.h string_find_partial_stop: where the longest prefix of ``stop`` that
    ``text`` ends with starts, or -1."""
    if not text or not stop:
        return -1
    last = text[-1]
    for n in range(min(len(text), len(stop)), 0, -1):
        if stop[n - 1] == last and text.endswith(stop[:n]):
            return len(text) - n
    return -1


class StopText:
    """One stream's generated text and stop strings."""

    def __init__(self, stop: Sequence[str] = ()) -> None:
        self.stops = [s.encode() for s in stop]
        self.text = bytearray()
        self.n_sent = 0
        self.stopped = False  # a stop string was found (the text is cut before it)

    def _find(self, test: bytes, last_size: int, full: bool) -> int:
        """server_slot::find_stopping_strings: the smallest match position over the stops."""
        best = -1
        for word in self.stops:
            if full:
                pos = test.find(word, max(0, len(test) - (len(word) + last_size)))
            else:
                pos = find_partial_stop(test, word)
            if pos != -1 and (best == -1 or pos < best):
                best = pos
                self.stopped = self.stopped or full
        return best

    def push(self, piece: bytes, is_eog: bool) -> bytes:
        """Add a token's piece; return the bytes that may be sent now."""
        self.text += piece
        if valid_utf8_prefix(self.text) < len(self.text):
            return b""
        pos = min(self.n_sent, len(self.text))
        test = bytes(self.text[pos:])
        stop_pos = self._find(test, len(piece), True)
        if stop_pos != -1:
            del self.text[pos + stop_pos:]
            pos = min(self.n_sent, len(self.text))
        elif not is_eog and self._find(test, len(piece), False) != -1:
            return b""  # may be the start of a stop string: hold it back
        out = bytes(self.text[pos:])
        self.n_sent += len(out)
        return out

    def flush(self) -> bytes:
        """What was held back when the stream ends for another reason (pyggml sends it, so the
        chunks always join to the final text)."""
        out = bytes(self.text[self.n_sent:])
        self.n_sent = len(self.text)
        return out
