"""A small HTTP/2 client for attack tests (cleartext with prior knowledge, or
TLS with ALPN h2 to a server in faultutil.TLS_PORTS), on
Debian's python3-h2. It can do what honest clients never do: leave request
bodies unfinished, keep its receive windows closed, ping to look alive.

One reader thread feeds the server's frames to the h2 state machine and
records what happened to each stream (headers, data, reset, end) and to the
connection (GOAWAY, closed). Every wait is bounded."""

import select
import socket
import ssl
import threading
import time

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings

from faultutil import TLS_PORTS

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


class H2Client:
    def __init__(self, port, window=None, timeout=10.0):
        """window: the stream receive window to announce (0: the server may
        send no response body until we open it, which we never do)."""
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        cafile = TLS_PORTS.get(port)
        self.tls = cafile is not None
        self.timeout = timeout
        if self.tls:  # HTTP/2 chosen by ALPN
            tls = ssl.create_default_context(cafile=cafile)
            tls.set_alpn_protocols(["h2"])
            self.sock = tls.wrap_socket(self.sock, server_hostname="127.0.0.1")
            assert self.sock.selected_alpn_protocol() == "h2", "the server did not choose h2 by ALPN"
            # One TLS connection must not be read and written at once: with
            # TLS every read and write is made under self.cv, non-blocking.
            self.sock.setblocking(False)
        else:
            self.sock.settimeout(timeout)
        cfg = h2.config.H2Configuration(client_side=True, header_encoding="utf-8")
        self.conn = h2.connection.H2Connection(config=cfg)
        if window is not None:
            self.conn.local_settings = h2.settings.Settings(
                client=True, initial_values={h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: window})
        self.cv = threading.Condition()
        self.settings_seen = False   # the server answered the preface with SETTINGS
        self.closed = None           # why the connection ended, once it has
        self.goaway = None           # the GOAWAY error code, if one came
        self.resets = {}             # stream id -> RST_STREAM error code
        self.reset_at = {}           # stream id -> when the reset came (time.monotonic())
        self.status = {}             # stream id -> response :status
        self.received = {}           # stream id -> response body bytes received
        self.bodies = {}             # stream id -> response body (when keep_bodies)
        self.keep_bodies = False
        self.ended = set()           # streams whose response ended
        self.pings_acked = 0
        with self.cv:
            self.conn.initiate_connection()
            self._flush()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    # -- internals ----------------------------------------------------------------

    def _flush(self):
        """Sends what h2 has queued; the caller holds self.cv."""
        data = self.conn.data_to_send()
        if data and self.closed is None:
            try:
                if self.tls:
                    self._send_tls(memoryview(data))
                else:
                    self.sock.sendall(data)
            except OSError as e:
                self.closed = f"send: {e!r}"
                self.cv.notify_all()

    def _send_tls(self, view):
        deadline = time.monotonic() + self.timeout
        while view:
            try:
                view = view[self.sock.send(view):]
            except (ssl.SSLWantWriteError, ssl.SSLWantReadError, BlockingIOError):
                if time.monotonic() > deadline:
                    raise OSError("send timed out")
                select.select([], [self.sock], [], 0.05)

    def _recv(self):
        """(data, why): data b"" at the end; None when nothing came yet."""
        if self.tls:
            try:
                if not self.sock.pending():
                    select.select([self.sock], [], [], 0.05)
            except (ValueError, OSError) as e:  # closed by close()
                return b"", f"recv: {e!r}"
            with self.cv:
                try:
                    return self.sock.recv(65536), "eof"
                except (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError):
                    return None, None
                except OSError as e:
                    return b"", f"recv: {e!r}"
        try:
            return self.sock.recv(65536), "eof"
        except socket.timeout:
            return None, None
        except OSError as e:
            return b"", f"recv: {e!r}"

    def _read(self):
        while True:
            data, why = self._recv()
            if data is None:
                if self.closed is not None:
                    return
                continue
            with self.cv:
                if self.closed is not None:
                    return
                if not data:
                    self.closed = why
                    self.cv.notify_all()
                    return
                try:
                    events = self.conn.receive_data(data)
                except h2.exceptions.ProtocolError as e:
                    self.closed = f"protocol error: {e!r}"
                    self.cv.notify_all()
                    return
                for ev in events:
                    self._event(ev)
                self._flush()
                self.cv.notify_all()

    def _event(self, ev):
        if isinstance(ev, h2.events.RemoteSettingsChanged):
            self.settings_seen = True
        elif isinstance(ev, h2.events.ResponseReceived):
            self.status[ev.stream_id] = dict(ev.headers).get(":status")
        elif isinstance(ev, h2.events.DataReceived):
            self.received[ev.stream_id] = self.received.get(ev.stream_id, 0) + len(ev.data)
            if self.keep_bodies:
                self.bodies[ev.stream_id] = self.bodies.get(ev.stream_id, b"") + ev.data
            # Honest reading: give the window back (a closed window is set
            # up by the constructor and never opened).
            if self.conn.local_settings.initial_window_size > 0 and ev.flow_controlled_length:
                try:
                    self.conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
                except h2.exceptions.StreamClosedError:
                    pass
        elif isinstance(ev, h2.events.StreamEnded):
            self.ended.add(ev.stream_id)
        elif isinstance(ev, h2.events.StreamReset):
            self.resets[ev.stream_id] = int(ev.error_code)
            self.reset_at[ev.stream_id] = time.monotonic()
        elif isinstance(ev, h2.events.ConnectionTerminated):
            self.goaway = int(ev.error_code)
        elif isinstance(ev, h2.events.PingAckReceived):
            self.pings_acked += 1

    # -- requests -----------------------------------------------------------------

    def wait(self, pred, timeout):
        """Waits until pred() (called under the lock) is true or timeout."""
        deadline = time.monotonic() + timeout
        with self.cv:
            while not pred():
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.cv.wait(min(left, 0.5))
            return True

    def wait_settings(self, timeout=5.0):
        return self.wait(lambda: self.settings_seen or self.closed is not None, timeout) \
            and self.settings_seen

    def request(self, method, path, headers=(), end_stream=True):
        """Opens a stream; returns its id, or None once the connection is gone
        or the server allows no more streams."""
        with self.cv:
            if self.closed is not None:
                return None
            sid = self.conn.get_next_available_stream_id()
            hdrs = [(":method", method), (":path", path), (":scheme", "http"),
                    (":authority", "127.0.0.1")] + list(headers)
            try:
                self.conn.send_headers(sid, hdrs, end_stream=end_stream)
            except h2.exceptions.TooManyStreamsError:
                return None
            self._flush()
            return sid

    def send_body(self, sid, nbytes, end_stream=False, timeout=5.0, chunk=16384, data=None):
        """Sends nbytes of body on sid as flow control allows: data's first
        nbytes, or that many b"x". Returns the bytes sent (fewer if the
        stream was reset, the connection ended or the window stayed shut
        past timeout)."""
        sent = 0
        deadline = time.monotonic() + timeout
        while sent < nbytes:
            with self.cv:
                while True:
                    if self.closed is not None or sid in self.resets:
                        return sent
                    try:
                        win = self.conn.local_flow_control_window(sid)
                    except h2.exceptions.StreamClosedError:
                        return sent
                    n = min(chunk, nbytes - sent, win, self.conn.max_outbound_frame_size)
                    if n > 0:
                        break
                    left = deadline - time.monotonic()
                    if left <= 0:
                        return sent
                    self.cv.wait(min(left, 0.5))
                last = end_stream and sent + n == nbytes
                try:
                    self.conn.send_data(sid, b"x" * n if data is None else data[sent:sent + n],
                                        end_stream=last)
                except (h2.exceptions.StreamClosedError, h2.exceptions.FlowControlError):
                    return sent
                self._flush()
                sent += n
        return sent

    def exchange(self, method, path, headers=(), body=None, timeout=10.0):
        """One complete request; returns (status, body bytes), or (None, why)."""
        self.keep_bodies = True
        hdrs = list(headers)
        if body is not None:
            hdrs.append(("content-length", str(len(body))))
        sid = self.request(method, path, hdrs, end_stream=body is None)
        if sid is None:
            return None, f"no stream: {self.closed}"
        if body is not None:
            with self.cv:
                try:
                    self.conn.send_data(sid, body, end_stream=True)
                except h2.exceptions.H2Error as e:
                    return None, repr(e)
                self._flush()
        if not self.wait(lambda: sid in self.ended or sid in self.resets or self.closed is not None,
                         timeout):
            return None, "no answer"
        if sid not in self.ended:
            return None, f"reset {self.resets.get(sid)}, closed {self.closed}"
        return int(self.status.get(sid, 0)), self.bodies.get(sid, b"")

    def ping(self):
        with self.cv:
            if self.closed is None:
                self.conn.ping(b"12345678")
                self._flush()

    def alive(self):
        with self.cv:
            return self.closed is None

    def close(self):
        with self.cv:
            if self.closed is None:
                self.closed = "closed by the test"
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        self.reader.join(5)


def frame(kind, flags, stream, payload=b""):
    """One raw HTTP/2 frame (RFC 9113, 4.1), for the attacks that the h2
    state machine would refuse to send."""
    return len(payload).to_bytes(3, "big") + bytes([kind, flags]) + stream.to_bytes(4, "big") + payload


def raw_preface(port, timeout=3.0):
    """Sends the HTTP/2 preface and an empty SETTINGS frame on a fresh
    connection; returns the first bytes the server answers (b"" if it just
    closed)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(PREFACE + frame(4, 0, 0))
        got = b""
        deadline = time.monotonic() + timeout
        while len(got) < 9 and time.monotonic() < deadline:
            try:
                chunk = s.recv(4096)
            except (socket.timeout, ConnectionResetError):
                break
            if not chunk:
                break
            got += chunk
        return got


def hpack_int(value, bits, first=0):
    """An HPACK integer of a bits-bit prefix (RFC 7541, 5.1)."""
    top = (1 << bits) - 1
    if value < top:
        return bytes([first | value])
    out, value = [first | top], value - top
    while value >= 128:
        out.append(value & 127 | 128)
        value >>= 7
    return bytes(out + [value])


def get_block(path=b"/leads", pad=0):
    """GET path, http, :authority x; pad: an x-pad field of pad bytes."""
    block = b"\x82\x86\x04" + hpack_int(len(path), 7) + path + b"\x01\x01x"
    if pad:
        block += b"\x00\x05x-pad" + hpack_int(pad, 7) + b"a" * pad
    return block


def frames_until_closed(sock, timeout):
    """The frames (type, flags, stream, payload) sock receives until the
    server closes it or timeout passes; and whether it closed."""
    sock.settimeout(0.2)
    buf, out, closed = b"", [], False
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            continue
        except OSError:
            closed = True
            break
        if not chunk:
            closed = True
            break
        buf += chunk
    while len(buf) >= 9:
        n = int.from_bytes(buf[:3], "big")
        if len(buf) < 9 + n:
            break
        out.append((buf[3], buf[4], int.from_bytes(buf[5:9], "big") & 0x7FFFFFFF, buf[9:9 + n]))
        buf = buf[9 + n:]
    return out, closed
