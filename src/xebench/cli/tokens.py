"""``xebench token create``: a service token and the config entry that stores its hash.

Example:
    >>> from xebench.cli.main import main
    >>> main(["token", "create", "--tenant", "acme", "--scopes", "read"])  # doctest: +ELLIPSIS
    token (give it to the client; it is not stored anywhere): ...
    config entry (add under `tokens:` in the --config file):
      - tenant: acme
        scopes: [read]
        hash: "..."
    0
"""

from __future__ import annotations

from typing import Annotated

import typer

__all__ = ["token_app", "token_create"]

token_app = typer.Typer(help="Create service tokens.", no_args_is_help=True)


@token_app.command("create")
def token_create(
    tenant: Annotated[str, typer.Option("--tenant", help="Tenant the token belongs to.")],
    scopes: Annotated[
        str, typer.Option("--scopes", help="Comma-separated: ingest, read.")
    ] = "ingest,read",
) -> None:
    """Print a new random token and the config entry that stores only its salted hash."""
    from ..service.config import TokenEntry, check_tenant, hash_token, new_token, parse_scopes

    entry = TokenEntry(
        check_tenant(tenant, "--tenant"),
        parse_scopes(scopes, "--scopes"),
        hash_token(token := new_token()),
    )
    typer.echo(f"token (give it to the client; it is not stored anywhere): {token}")
    typer.echo("config entry (add under `tokens:` in the --config file):")
    typer.echo(f"  - tenant: {entry.tenant}")
    typer.echo(f"    scopes: [{', '.join(sorted(entry.scopes))}]")
    typer.echo(f'    hash: "{entry.digest}"')
