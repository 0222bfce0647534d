"""How cloudserve prints results: human text or one JSON object per command.

* ``text`` on a terminal: rich tables, colour, live progress bars (on stderr).
* ``text`` elsewhere (CI logs, pipes): plain aligned lines, progress as occasional lines on
  stderr, no colour, no cursor movement.
* ``json``: exactly one JSON object on stdout, ``{"ok": true, ...}`` or
  ``{"ok": false, "error": {...}}``; everything else (progress, warnings) goes to stderr.

Expected errors print one line plus a hint on stderr. Settings are passed through
:func:`redact` before they are printed, so credentials never reach a terminal or a CI log.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, Literal, TextIO

from cloudserve.errors import CloudserveError
from cloudserve.progress import LineProgress, Progress, RichProgress

OutputMode = Literal["text", "json"]
REDACTED = "***"

#: a key holding one of these words holds a secret ...
_SENSITIVE_WORDS = (
    "secret", "token", "password", "passwd", "passphrase", "pwd", "jwt", "credential", "private",
    "auth",
)
#: ... unless it names or points at the secret rather than holding it
_REFERENCE_SUFFIXES = ("_id", "_arn", "_name", "_path", "_file", "_uri", "_url", "_mode", "_type")
_URL_PASSWORD = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)(?P<user>[^:/@\s]*):[^@/\s]+@", re.I)
#: query parameters of signed URLs (S3/GCS/Azure SAS) and token-bearing links
_QUERY_SECRET = re.compile(
    r"(?P<name>[?&](?:x-amz-signature|x-amz-credential|x-amz-security-token|x-goog-signature|"
    r"x-goog-credential|sig|signature|token|access_token|id_token|refresh_token|jwt|"
    r"api_key|apikey|key|code|password)=)[^&#\s'\"]+",
    re.I,
)
#: ``name=value`` and ``name: 'value'`` (a dict's repr) inside free text; an unquoted
#: ``name: text`` is a message about a setting (``x.token: Field required``), not a value
_KEY_VALUE = re.compile(
    r"(?P<key>[A-Za-z_][\w.-]*)(?P<close>['\"]?)(?P<sep>\s*=\s*|\s*:\s*(?=['\"]))"
    r"(?P<quote>['\"]?)(?P<value>[^\s'\",;}\])]+)"
)


def is_sensitive(key: str) -> bool:
    """Does a setting named ``key`` hold a credential?

    True for names containing secret/token/password/passwd/credential/private/auth or ending in
    ``key`` (``api_key``, ``account_key``); false for names that only refer to one
    (``kms_key_id``, ``secret_arn``, ``credentials_file``, ``auth_mode``) and for ``kms_*``.
    """
    k = key.lower()
    if k.startswith("kms_") or k.endswith(_REFERENCE_SUFFIXES):
        return False
    return any(word in k for word in _SENSITIVE_WORDS) or k.endswith("key")


def redact(value: Any, *, key: str = "") -> Any:
    """A copy of ``value`` with credentials replaced by ``***``.

    Values under sensitive keys (:func:`is_sensitive`) are replaced, pydantic ``SecretStr``
    values are replaced wherever they are, and passwords in URLs (``https://u:p@host``) are cut.
    """
    if key and is_sensitive(key) and value not in (None, "", {}, []):
        return REDACTED
    if type(value).__name__ in ("SecretStr", "SecretBytes"):
        return REDACTED
    if isinstance(value, Mapping):
        return {k: redact(v, key=str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    if isinstance(value, str):
        return _redact_urls(value)
    return value


def _redact_urls(text: str) -> str:
    text = _URL_PASSWORD.sub(rf"\g<scheme>\g<user>:{REDACTED}@", text)
    return _QUERY_SECRET.sub(rf"\g<name>{REDACTED}", text)


def redact_text(text: str) -> str:
    """Free text (an error message, a traceback) with credentials replaced by ``***``.

    Cuts URL passwords and signed-URL query tokens (``X-Amz-Signature``, ``X-Goog-Signature``,
    ``sig``, ``token``, ...) like :func:`redact`, and the value of every ``key=value`` or
    ``'key': 'value'`` pair whose key :func:`is_sensitive` (the last dotted part counts:
    ``targets.aws.secret_key=...``).
    """

    def pair(match: re.Match[str]) -> str:
        key = match["key"].rsplit(".", 1)[-1]
        if not is_sensitive(key) or match["value"] == REDACTED:
            return match[0]
        return f"{match['key']}{match['close']}{match['sep']}{match['quote']}{REDACTED}"

    return _KEY_VALUE.sub(pair, _redact_urls(text))


def stdin_is_interactive() -> bool:
    """Can cloudserve ask the user a question? Never in CI (``CI`` set) or without a TTY."""
    if os.environ.get("CI", "").lower() not in ("", "0", "false"):
        return False
    return sys.stdin.isatty()


class Output:
    """The one place commands print through.

    Args:
        mode: ``text`` or ``json``.
        verbose: show tracebacks of errors and extra detail.
    """

    def __init__(self, mode: OutputMode = "text", *, verbose: bool = False):
        self.mode = mode
        self.verbose = verbose

    # ------------------------------------------------------------------ streams

    @property
    def json(self) -> bool:
        return self.mode == "json"

    @property
    def stdout(self) -> TextIO:
        return sys.stdout

    @property
    def stderr(self) -> TextIO:
        return sys.stderr

    @property
    def rich(self) -> bool:
        """Use rich formatting on stdout: text mode on a terminal."""
        return not self.json and self.stdout.isatty()

    def _console(self, stream: TextIO):
        from rich.console import Console

        return Console(file=stream, highlight=False, soft_wrap=True)

    # ------------------------------------------------------------------ results

    def result(self, data: Mapping[str, Any], text: Callable[[Output], None]) -> None:
        """Print a command's result: ``{"ok": true, **data}`` in JSON mode, else ``text(self)``."""
        if self.json:
            self.write_json({"ok": True, **redact(dict(data))})
        else:
            text(self)

    def write_json(self, obj: Mapping[str, Any]) -> None:
        self.stdout.write(json.dumps(obj, indent=2, default=str) + "\n")
        self.stdout.flush()

    def line(self, text: str = "") -> None:
        """One line of text on stdout."""
        self.stdout.write(text + "\n")

    def table(
        self, headers: Sequence[str], rows: Sequence[Sequence[Any]], *, title: str = ""
    ) -> None:
        """A table: rich on a terminal, space-aligned plain columns otherwise."""
        cells = [["" if c is None else str(c) for c in row] for row in rows]
        if self.rich:
            from rich.table import Table

            table = Table(*headers, title=title or None, title_justify="left")
            for row in cells:
                table.add_row(*row)
            self._console(self.stdout).print(table)
            return
        if title:
            self.line(title)
        widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
        for row in [list(headers), *cells]:
            self.line("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())

    def note(self, message: str) -> None:
        """A side remark for humans, on stderr (so it never breaks JSON on stdout)."""
        self.stderr.write(message + "\n")

    # ------------------------------------------------------------------ errors

    def error(self, error: CloudserveError, *, traceback: str | None = None) -> None:
        """Report an expected error: one line + hint on stderr; the JSON object on stdout."""
        if traceback and self.verbose:
            self.stderr.write(redact_text(traceback))
        where = f" [{error.provider}]" if error.provider else ""
        self.stderr.write(f"error{where}: {redact_text(error.message)}\n")
        fixes = set()
        for finding in getattr(error, "findings", ()):
            self.stderr.write(
                f"  {finding.severity:<7} {finding.id}: {redact_text(finding.message)}\n"
            )
            if finding.severity == "error" and finding.fix:
                fixes.add(finding.fix)
                self.stderr.write(f"          fix: {redact_text(finding.fix)}\n")
            if finding.severity == "error" and finding.source:
                self.stderr.write(f"          see: {finding.source}\n")
        for line in error.details:
            self.stderr.write(f"  {redact_text(line)}\n")
        if error.hint and error.hint not in fixes:
            self.stderr.write(f"hint: {redact_text(error.hint)}\n")
        if self.json:
            self.write_json({"ok": False, "error": redact(error.to_dict())})

    # ------------------------------------------------------------------ interaction

    def confirm(self, question: str) -> bool:
        """Ask a yes/no question on the terminal. Only call when :func:`stdin_is_interactive`."""
        self.stderr.write(f"{question} [y/N] ")
        self.stderr.flush()
        answer = sys.stdin.readline().strip().lower()
        return answer in ("y", "yes")

    @contextmanager
    def progress(self) -> Iterator[Progress]:
        """Progress for long operations: live bars on a terminal, else lines on stderr."""
        if not self.json and self.stderr.isatty():
            with RichProgress(self._console(self.stderr)) as bars:
                yield bars
        else:
            yield LineProgress(self.stderr)
