import datetime as dt
import hashlib
import http.server
import io
import threading
import zipfile
from pathlib import Path

import openpyxl
import pytest

from pipeline.sources import readers
from pipeline.sources.download import DownloadError, TransientDownloadError, download_uci

HEADER = ["Invoice", "StockCode", "Description", "Quantity", "InvoiceDate", "Price", "Customer ID", "Country"]


def uci_workbook_bytes() -> bytes:
    """A tiny workbook laid out like the UCI file: two sheets, all-digit codes as numbers."""
    workbook = openpyxl.Workbook()
    first = workbook.active
    first.title = "Year 2009-2010"
    first.append(HEADER)
    first.append(
        [
            489434,
            85048,
            "15CM CHRISTMAS GLASS BALL 20 LIGHTS",
            12,
            dt.datetime(2009, 12, 1, 7, 45),
            6.95,
            13085.0,
            "United Kingdom",
        ]
    )
    first.append(
        ["C489449", "22087", "PAPER BUNTING", -12, dt.datetime(2009, 12, 1, 10, 33), 2.95, None, "Australia"]
    )
    second = workbook.create_sheet("Year 2010-2011")
    second.append(HEADER)
    second.append(
        [
            536365,
            "85123A",
            "WHITE HANGING HEART T-LIGHT HOLDER",
            6,
            dt.datetime(2010, 12, 1, 8, 26),
            2.55,
            17850.0,
            "United Kingdom",
        ]
    )
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def zip_bytes(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    return buffer.getvalue()


class Server:
    """A local HTTP server answering from a dict of path -> (body, send Content-Length)."""

    def __init__(self, routes: dict[str, tuple[bytes, bool]], *, unavailable: dict[str, int] | None = None):
        self.routes = routes
        self.requests: list[str] = []
        # Paths that answer 503 to their first N requests (a server under maintenance).
        self.unavailable = dict(unavailable or {})
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                server.requests.append(self.path)
                if server.unavailable.get(self.path, 0) > 0:
                    server.unavailable[self.path] -= 1
                    self.send_error(503)
                    return
                if self.path not in server.routes:
                    self.send_error(404)
                    return
                body, with_length = server.routes[self.path]
                self.send_response(200)
                self.send_header("Content-Type", "application/zip" if body[:2] == b"PK" else "text/html")
                if with_length:
                    self.send_header("Content-Length", str(len(body)))
                else:
                    # Without a length HTTP/1.0 delimits the body by closing the connection.
                    self.close_connection = True
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"


@pytest.fixture(scope="module")
def uci_zip() -> bytes:
    return zip_bytes({"online_retail_II.xlsx": uci_workbook_bytes()})


@pytest.fixture(scope="module")
def server(uci_zip):
    routes = {
        "/static/public/502/online+retail+ii.zip": (uci_zip, True),
        "/streamed.zip": (uci_zip, False),
        "/error-page.zip": (b"<!DOCTYPE html><html><body>Service unavailable</body></html>", True),
        "/traversal.zip": (zip_bytes({"../../evil.xlsx": uci_workbook_bytes()}), True),
        "/two-books.zip": (zip_bytes({"a.xlsx": b"1", "b.xlsx": b"2"}), True),
        "/no-book.zip": (zip_bytes({"readme.txt": b"hello"}), True),
    }
    running = Server(routes)
    running.thread.start()
    yield running
    running.httpd.shutdown()
    running.httpd.server_close()
    running.thread.join(timeout=5)


def test_download_extract_read_and_cache(server, uci_zip, tmp_path):
    url = server.url("/static/public/502/online+retail+ii.zip")
    checksum = hashlib.sha256(uci_zip).hexdigest()
    before = len(server.requests)
    path = download_uci(tmp_path / "cache", url=url, expected_sha256=checksum, timeout=10)
    assert path == tmp_path / "cache" / "online_retail_II.xlsx"
    assert (tmp_path / "cache" / "online_retail_ii.zip").read_bytes() == uci_zip
    frame = readers.read_file(path)
    assert frame["invoice"].tolist() == ["489434", "C489449", "536365"]
    assert frame["stock_code"].tolist() == ["85048", "22087", "85123A"]
    assert frame["customer_id"].tolist()[0] == 13085
    assert frame["source_sheet"].tolist() == ["Year 2009-2010"] * 2 + ["Year 2010-2011"]

    # Second call: served from the cache, checksum verified, no request.
    assert download_uci(tmp_path / "cache", url=url, expected_sha256=checksum.upper(), timeout=10) == path
    assert download_uci(tmp_path / "cache", url=url, timeout=10) == path
    assert len(server.requests) == before + 1

    # A damaged extracted workbook is restored from the cached archive, still without a request.
    path.write_bytes(b"damaged")
    assert download_uci(tmp_path / "cache", url=url, timeout=10) == path
    assert len(readers.read_file(path)) == 3
    assert len(server.requests) == before + 1

    # A cached archive that no longer matches the checksum is downloaded again.
    (tmp_path / "cache" / "online_retail_ii.zip").write_bytes(zip_bytes({"online_retail_II.xlsx": b"old"}))
    download_uci(tmp_path / "cache", url=url, expected_sha256=checksum, timeout=10)
    assert len(server.requests) == before + 2
    assert len(readers.read_file(path)) == 3


def test_checksum_mismatch_is_refused_and_not_cached(server, tmp_path):
    with pytest.raises(DownloadError, match="checksum mismatch"):
        download_uci(
            tmp_path, url=server.url("/static/public/502/online+retail+ii.zip"), expected_sha256="0" * 64
        )
    assert list(tmp_path.iterdir()) == []


def test_non_zip_answer_is_refused(server, tmp_path):
    with pytest.raises(DownloadError, match="not a zip"):
        download_uci(tmp_path, url=server.url("/error-page.zip"))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("path", "message"),
    [("/static/public/502/online+retail+ii.zip", "announces"), ("/streamed.zip", "exceeded the limit")],
)
def test_oversize_is_refused_announced_or_streamed(server, uci_zip, tmp_path, path, message):
    with pytest.raises(DownloadError, match=message):
        download_uci(tmp_path, url=server.url(path), max_bytes=len(uci_zip) - 1)
    assert list(tmp_path.iterdir()) == []
    # The same answer within the limit is accepted, also when streamed without Content-Length.
    assert (
        download_uci(tmp_path, url=server.url(path), max_bytes=len(uci_zip)).name == "online_retail_II.xlsx"
    )


def test_oversized_member_is_refused(server, tmp_path):
    with pytest.raises(DownloadError, match="limit"):
        download_uci(tmp_path, url=server.url("/streamed.zip"), max_member_bytes=100)
    assert not list(tmp_path.glob("*.xlsx"))


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/traversal.zip", "unsafe member"),
        ("/two-books.zip", "exactly one .xlsx"),
        ("/no-book.zip", "exactly one .xlsx"),
        ("/missing.zip", "HTTP 404"),
    ],
)
def test_bad_archives_and_http_errors(server, tmp_path, path, message):
    with pytest.raises(DownloadError, match=message):
        download_uci(tmp_path / "cache", url=server.url(path))
    assert not (tmp_path / "evil.xlsx").exists()
    assert not list(tmp_path.rglob("*.xlsx"))


def test_only_network_failures_are_transient(server, tmp_path):
    server.unavailable["/static/public/502/online+retail+ii.zip"] = 1
    with pytest.raises(TransientDownloadError, match="HTTP 503"):
        download_uci(tmp_path / "a", url=server.url("/static/public/502/online+retail+ii.zip"))
    # The next attempt succeeds.
    assert download_uci(tmp_path / "a", url=server.url("/static/public/502/online+retail+ii.zip")).is_file()
    with pytest.raises(DownloadError, match="HTTP 404") as refused:
        download_uci(tmp_path / "b", url=server.url("/missing.zip"))
    assert not isinstance(refused.value, TransientDownloadError)
    with pytest.raises(DownloadError, match="checksum") as mismatch:
        download_uci(tmp_path / "c", url=server.url("/static/public/502/online+retail+ii.zip"),
                     expected_sha256="0" * 64)
    assert not isinstance(mismatch.value, TransientDownloadError)


def test_unreachable_server_and_foreign_scheme(tmp_path):
    probe = http.server.HTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)
    port = probe.server_address[1]
    probe.server_close()
    with pytest.raises(TransientDownloadError, match="cannot connect"):
        download_uci(tmp_path, url=f"http://127.0.0.1:{port}/x.zip", timeout=5)
    with pytest.raises(DownloadError, match="http and https"):
        download_uci(tmp_path, url=f"file://{Path(__file__).resolve()}")
