"""`cmscan api token`: make a bearer token for the HTTP API and the config lines that admit it."""

from __future__ import annotations

import re
from typing import Annotated

import typer

from scanner.cli.common import err, fail, out

app = typer.Typer(help="The HTTP API.", no_args_is_help=True)

# Names end up in the config file and in rescan requests' "requested by"; keep them plain.
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")
SCOPES = ("read", "rescan")


@app.command("token")
def token(
    name: Annotated[str, typer.Argument(help="Who or what uses the token, e.g. grafana.")],
    scope: Annotated[
        list[str] | None,
        typer.Option("--scope", help="read (the default) or rescan; repeat for both."),
    ] = None,
) -> None:
    """Make a random token. It is printed once: cmscan keeps only its SHA-256.

    Add the printed lines to the config file and restart the daemon; send the token as
    `Authorization: Bearer <token>`.
    """
    from exporters.auth import new_token, token_hash

    if not _NAME.match(name):
        fail(f"token name {name!r}: use up to 64 letters, digits, '.', '_', '@' or '-'")
    scopes = list(dict.fromkeys(scope or ["read"]))
    unknown = [s for s in scopes if s not in SCOPES]
    if unknown:
        fail(f"unknown scope {', '.join(unknown)}; use read or rescan")
    if "rescan" in scopes and "read" not in scopes:
        scopes.insert(0, "read")  # whoever may queue a rescan needs to read its result
    secret = new_token()
    err.print("Token (shown only now; store it in your secret manager):", markup=False)
    out.print(secret, markup=False, highlight=False)
    err.print("\nAdd to cmscan.toml:", markup=False)
    quoted = ", ".join(f'"{s}"' for s in scopes)
    out.print(
        f'\n[[api.tokens]]\nname = "{name}"\nsha256 = "{token_hash(secret)}"\nscopes = [{quoted}]',
        markup=False,
        highlight=False,
    )
