"""pyggml.llm.stop: string_find_partial_stop diffed against the reference's own (through the
probe), validate_utf8 and llama-server's process_token text handling (StopText)."""

from __future__ import annotations

from hypothesis import example, given, settings
from hypothesis import strategies as st

from pyggml.llm.stop import StopText, find_partial_stop, valid_utf8_prefix
from pyggml.reference.generate import ref_find_partial_stop

EMOJI = "\U0001f600".encode()  # F0 9F 98 80

# pieces from a small alphabet, so a text's tail and a stop's head overlap often: ASCII, whole
# 2/3/4-byte characters and their loose bytes (lead and continuation)
PIECES = [b"a", b"b", b" ", "\u00e9".encode(), "\u20ac".encode(), EMOJI,
          b"\xc3", b"\xa9", b"\xe2", b"\x82", b"\xf0", b"\x9f", b"\x80"]
chunks = st.lists(st.sampled_from(PIECES), max_size=8).map(b"".join)


@st.composite
def text_and_stop(draw: st.DrawFn) -> tuple[bytes, bytes]:
    stop = draw(chunks)
    # half the time the text ends with a prefix of the stop (the case the function is for)
    if draw(st.booleans()):
        text = draw(chunks) + stop[:draw(st.integers(0, len(stop)))]
    else:
        text = draw(chunks)
    return text, stop


@settings(max_examples=600, deadline=None)
@given(text_and_stop())
@example((b"", b"abc"))
@example((b"abc", b""))
@example((b"xab", b"abab"))
@example((b"abab", b"ab"))
@example(("x\u00e9".encode(), "\u00e9\u00e9".encode()))
@example((b"\xc3", "\u00e9".encode()))
def test_find_partial_stop_matches_reference(case: tuple[bytes, bytes]) -> None:
    text, stop = case
    assert find_partial_stop(text, stop) == ref_find_partial_stop(text, stop)


def test_ref_find_partial_stop() -> None:
    assert ref_find_partial_stop(b"hello wor", b"world") == 6
    assert ref_find_partial_stop(b"hello", b"world") == -1
    assert ref_find_partial_stop(b"", b"x") == -1
    assert ref_find_partial_stop(b"abab", b"abab") == 0  # the longest prefix: the whole stop


# -- valid_utf8_prefix (server-common.cpp validate_utf8) ------------------------------------


def test_valid_utf8_prefix() -> None:
    assert valid_utf8_prefix(b"") == 0
    assert valid_utf8_prefix(b"abc") == 3
    assert valid_utf8_prefix(b"a\xc3") == 1
    assert valid_utf8_prefix("a\u00e9".encode()) == 3
    assert valid_utf8_prefix(b"\xe2\x82") == 0
    assert valid_utf8_prefix("\u20ac".encode()) == 3
    for k in range(1, 4):
        assert valid_utf8_prefix(b"ab" + EMOJI[:k]) == 2
    assert valid_utf8_prefix(b"ab" + EMOJI) == 6
    assert valid_utf8_prefix(bytearray(b"a\xc3")) == 1
    # no lead byte in the last four: nothing is cut, whatever the bytes are
    assert valid_utf8_prefix(b"\xf0\x9f\x98\x80\x80") == 5
    assert valid_utf8_prefix(b"a\x80") == 2


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=12), st.data())
def test_valid_utf8_prefix_cuts_at_the_last_boundary(s: str, data: st.DataObject) -> None:
    raw = s.encode()
    k = data.draw(st.integers(0, len(raw)))
    boundaries = [len(s[:i].encode()) for i in range(len(s) + 1)]
    assert valid_utf8_prefix(raw[:k]) == max(b for b in boundaries if b <= k)


# -- StopText (server-context.cpp process_token) ---------------------------------------------


def run(stops: list[str], pieces: list[bytes], eog_last: bool = False) -> tuple[list[bytes], StopText]:
    st_ = StopText(stops)
    out = [st_.push(p, eog_last and i == len(pieces) - 1) for i, p in enumerate(pieces)]
    return out, st_


def test_stop_across_two_pieces() -> None:
    out, s = run(["END"], [b"xx", b"EN", b"D!"])
    assert out == [b"xx", b"", b""]
    assert s.stopped and bytes(s.text) == b"xx" and s.flush() == b""


def test_stop_inside_one_piece_cuts_the_rest() -> None:
    out, s = run(["END"], [b"hello ", b"fooENDbar"])
    assert out == [b"hello ", b"foo"] and s.stopped


def test_partial_stop_held_then_released() -> None:
    out, s = run(["END"], [b"a E", b"N", b"gg"])
    assert out == [b"", b"", b"a ENgg"]
    assert not s.stopped and bytes(s.text) == b"a ENgg"


def test_flush_sends_what_was_held() -> None:
    out, s = run(["END"], [b"ok E"])
    assert out == [b""] and not s.stopped
    assert s.flush() == b"ok E" and s.flush() == b""


def test_emoji_split_never_sent_half() -> None:
    for k in range(1, 4):
        out, s = run([], [b"hi " + EMOJI[:k], EMOJI[k:], b"!"])
        assert out == [b"", b"hi " + EMOJI, b"!"]
        for chunk in out:
            chunk.decode("utf-8")  # every chunk sent is whole characters


def test_emoji_split_with_stops() -> None:
    # the partial-stop check also waits for the character to complete
    out, s = run(["\U0001f600!"], [EMOJI[:2], EMOJI[2:], b"?"])
    assert out == [b"", b"", EMOJI + b"?"] and not s.stopped


def test_stop_at_the_very_start() -> None:
    out, s = run(["###"], [b"###"])  # the stream ends here: nothing more is pushed
    assert out == [b""] and s.stopped and bytes(s.text) == b""
    out, s = run(["###"], [b"#", b"##x"])
    assert out == [b"", b""] and s.stopped and bytes(s.text) == b"" and s.flush() == b""


def test_several_stops_earliest_wins() -> None:
    for stops in (["world", "lo"], ["lo", "world"]):
        out, s = run(stops, [b"hello world"])
        assert out == [b"hel"] and s.stopped and bytes(s.text) == b"hel"


def test_several_stops_partial_of_any_holds() -> None:
    out, s = run(["abc", "xyz"], [b"1 x", b"y", b"z tail"])
    assert out == [b"", b"", b"1 "] and s.stopped


def test_eog_piece_never_holds_back() -> None:
    out, s = run(["END"], [b"x ", b"E"], eog_last=True)
    assert out == [b"x ", b"E"] and not s.stopped
    # a whole stop string in the EOG piece is still cut
    out, s = run(["END"], [b"x ", b"yEND"], eog_last=True)
    assert out == [b"x ", b"y"] and s.stopped


def test_full_stop_search_window_is_the_references() -> None:
    # find_stopping_strings searches only the last len(stop) + len(piece) bytes of the unsent
    # text; while a character is incomplete nothing is searched, so a stop string followed by a
    # character that arrives byte by byte falls outside the window and is sent (as the server does)
    out, s = run(["END"], [b"END" + EMOJI[:1], EMOJI[1:2], EMOJI[2:3], EMOJI[3:]])
    assert out == [b"", b"", b"", b"END" + EMOJI] and not s.stopped
