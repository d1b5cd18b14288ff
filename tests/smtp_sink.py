"""A real SMTP server on 127.0.0.1 for tests: it speaks the protocol and keeps what it gets.

Stdlib only (socketserver), so the app's smtplib client talks to a real socket: EHLO,
MAIL FROM, RCPT TO, DATA with dot-unstuffing, RSET, NOOP, QUIT. Each message is kept
with its envelope and parsed with the `email` package.
"""

from __future__ import annotations

import email
import socket
import socketserver
import threading
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage


@dataclass
class Received:
    mail_from: str
    rcpt_to: list[str]
    raw: bytes
    message: EmailMessage = field(repr=False)

    def part(self, subtype: str) -> str:
        """The decoded text of the text/<subtype> part."""
        body = self.message.get_body(preferencelist=(subtype,))
        assert body is not None and body.get_content_subtype() == subtype, subtype
        return body.get_content()


class _Handler(socketserver.StreamRequestHandler):
    timeout = 10

    def _reply(self, line: str) -> None:
        self.wfile.write(line.encode() + b"\r\n")
        self.wfile.flush()

    def handle(self) -> None:
        sink: SmtpSink = self.server.sink  # type: ignore[attr-defined]
        self._reply("220 sink.test ESMTP test sink")
        mail_from, rcpts = "", []
        while True:
            line = self.rfile.readline()
            if not line:
                return
            command = line.decode("utf-8", "replace").rstrip("\r\n")
            verb = command[:4].upper()
            if verb == "EHLO":
                self._reply("250-sink.test")
                self._reply("250 8BITMIME")
            elif verb == "HELO":
                self._reply("250 sink.test")
            elif verb == "MAIL":
                mail_from, rcpts = command.split(":", 1)[1].strip().strip("<>"), []
                self._reply("250 OK")
            elif verb == "RCPT":
                rcpts.append(command.split(":", 1)[1].strip().strip("<>"))
                self._reply("250 OK")
            elif verb == "DATA":
                self._reply("354 End data with <CR><LF>.<CR><LF>")
                lines = []
                while True:
                    data = self.rfile.readline()
                    if data in (b".\r\n", b".\n", b""):
                        break
                    lines.append(data[1:] if data.startswith(b"..") else data)
                raw = b"".join(lines)
                message = email.message_from_bytes(raw, policy=policy.default)
                sink.received.append(Received(mail_from, list(rcpts), raw, message))
                self._reply("250 OK queued")
            elif verb == "RSET":
                mail_from, rcpts = "", []
                self._reply("250 OK")
            elif verb == "NOOP":
                self._reply("250 OK")
            elif verb == "QUIT":
                self._reply("221 Bye")
                return
            else:
                self._reply("502 Command not implemented")


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


class SmtpSink:
    """Start with `with SmtpSink() as sink:`; `sink.url` is the MAIL_URL to use."""

    def __init__(self, port: int = 0) -> None:
        self.received: list[Received] = []
        self._server = _Server(("127.0.0.1", port), _Handler)
        self._server.sink = self  # type: ignore[attr-defined]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"smtp://{host}:{port}"

    def to(self, address: str) -> list[Received]:
        return [m for m in self.received if address in m.rcpt_to]

    def __enter__(self) -> SmtpSink:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def closed_port_url() -> str:
    """A MAIL_URL on a loopback port that nothing listens on (an SMTP outage)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"smtp://127.0.0.1:{port}"
