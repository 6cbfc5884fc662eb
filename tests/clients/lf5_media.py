"""Media with the official Langfuse 5.x SDK; run under .venvs/langfuse5 by the tests.

    lf5_media.py PNG_FILE WAV_FILE   a span whose input holds the PNG as a base64 data
                                     URI and the WAV as a LangfuseMedia (from the file);
                                     flush; print {"trace_id", "log", "media_log"}

``log`` is every warning or error the SDK logged (a failed upload logs one);
``media_log`` its debug lines about media (``already uploaded`` for a skipped upload).
"""

from __future__ import annotations

import base64
import json
import logging
import sys
from pathlib import Path


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.records: list[str] = []
        self.media: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if record.levelno >= logging.WARNING:
            self.records.append(f"{record.levelname} {record.name}: {message}")
        elif "media" in message.lower():
            self.media.append(message)


_log = _Collect()
logging.getLogger("langfuse").addHandler(_log)
logging.getLogger("langfuse").setLevel(logging.DEBUG)

from langfuse import Langfuse, LangfuseMedia  # noqa: E402


def main(png_file: str, wav_file: str) -> dict[str, object]:
    png = base64.b64encode(Path(png_file).read_bytes()).decode()
    client = Langfuse()
    logging.getLogger("langfuse").setLevel(logging.DEBUG)  # Langfuse() set WARNING
    audio = LangfuseMedia(file_path=wav_file, content_type="audio/wav")
    with client.start_as_current_observation(
        name="describe-image",
        as_type="span",
        input={
            "question": "What is in this picture?",
            "image": f"data:image/png;base64,{png}",
            "audio": audio,
        },
        output="a red square",
    ) as span:
        trace_id = span.trace_id
    client.flush()
    client.shutdown()
    return {"trace_id": trace_id, "log": _log.records, "media_log": _log.media}


if __name__ == "__main__":
    print(json.dumps(main(*sys.argv[1:3])))
