"""Log format and redaction: no secret reaches a log line by any path."""

from __future__ import annotations

import logging
import re
from pathlib import Path

from trio_companion.logs import REDACTED, logging_configured, redact, register_secrets

TOKEN = "MTA4NzY1NDMyMTA5ODc2NTQzMg.GaBcDe.abcdefghijklmnopqrstuvwxyz0123456789AB"


def test_redact_known_secrets_tokens_and_auth_headers() -> None:
    register_secrets(["sk-live-0123456789", "abc"])  # too short to be replaced everywhere
    assert redact("key=sk-live-0123456789;") == f"key={REDACTED};"
    assert redact(f"token {TOKEN} leaked") == f"token {REDACTED} leaked"
    assert redact("Authorization: Bot abcdefghijkl.mnop") == f"Authorization: Bot {REDACTED}"
    assert redact("Bearer eyJhbGciOi.J9") == f"Bearer {REDACTED}"
    assert redact("a cab and abc stay") == "a cab and abc stay"


def test_log_lines_have_one_format_and_no_secrets(tmp_path: Path) -> None:
    register_secrets(["hunter2-password"])
    log_file = tmp_path / "logs" / "bot.log"
    with logging_configured("INFO", file=str(log_file)):
        log = logging.getLogger("trio_companion.test")
        log.info("connecting with %s", TOKEN)
        log.debug("not shown at INFO")
        try:
            raise ValueError("password was hunter2-password")
        except ValueError:
            log.exception("failed")
    text = log_file.read_text()
    assert TOKEN not in text
    assert "hunter2-password" not in text
    assert "not shown" not in text
    lines = text.splitlines()
    pattern = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (INFO   |ERROR  ) trio_companion\.test: .*"
    assert re.fullmatch(pattern, lines[0]), lines[0]
    assert lines[0].endswith(f"connecting with {REDACTED}")
    assert "Traceback (most recent call last):" in text
    assert f"ValueError: password was {REDACTED}" in text


def test_previous_handlers_are_restored(tmp_path: Path) -> None:
    root = logging.getLogger()
    before = list(root.handlers)
    with logging_configured("DEBUG", file=str(tmp_path / "x.log")):
        assert root.handlers != before
    assert root.handlers == before
