"""The server's own header reader (a speed-up found with the bench) reads what gevent's
standard one reads: plain requests through the fast path, anything odd through the
standard parser."""

import io

from gevent.pywsgi import headers_factory

from imbus.gevent_tuning import PlainHeaders, read_headers

PLAIN = (b"Host: 127.0.0.1:8072\r\nContent-Type: application/json\r\nContent-Length: 42\r\n"
         b"Cookie: session_id=abc; x=1\r\nX-Empty:\r\nX-Spaced:   padded  \r\n\r\nBODY")


def both(raw):
    return read_headers(io.BytesIO(raw)), headers_factory(io.BytesIO(raw))


def test_plain_headers_take_the_fast_path_and_read_the_same():
    fast, standard = both(PLAIN)
    assert isinstance(fast, PlainHeaders)
    assert fast.status == standard.status == ""
    for name in ("host", "Content-Type", "CONTENT-LENGTH", "cookie", "x-empty", "x-spaced", "missing"):
        assert fast.get(name) == standard.get(name)
        assert fast.getheader(name, "-") == standard.getheader(name, "-")
    assert fast.typeheader == standard.typeheader == "application/json"
    assert list(fast.headers) == list(standard.headers)


def test_the_body_is_left_unread():
    stream = io.BytesIO(PLAIN)
    read_headers(stream)
    assert stream.read() == b"BODY"


def test_deleting_a_header_removes_every_copy():
    fast = read_headers(io.BytesIO(b"Content-Length: 1\r\ncontent-length: 2\r\nA: b\r\n\r\n"))
    del fast["Content-Length"]
    assert fast.get("content-length") is None
    assert fast.headers == ["A: b\r\n"]


def test_odd_headers_are_left_to_the_standard_parser():
    for raw in (b"Folded: a\r\n b\r\n\r\n", b"No colon here\r\n\r\n", b"Bad Name: x\r\n\r\n",
                b"X: " + b"y" * 70000 + b"\r\n\r\n"):
        fast, standard = both(raw)
        assert not isinstance(fast, PlainHeaders)
        assert fast.status == standard.status
        assert list(fast.headers) == list(standard.headers)


def test_a_request_cut_before_the_blank_line_ends_the_headers():
    fast, standard = both(b"Host: x\r\n")
    assert fast.get("host") == standard.get("host") == "x"
