"""The risk board's settings (``server.board``): who may sign in and how, the board's
public address, and how long it keeps each account's score history. Pydantic only."""

from __future__ import annotations

import ipaddress

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

#: An address or network a trusted proxy may connect from.
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class BoardConfig(BaseModel):
    """Sign-in beyond the shared ``board_token``: a trusted reverse proxy's headers, and
    local users with password hashes; the public address redirects are built on."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    public_url: str | None = Field(
        None,
        description="The board's address as people reach it, e.g. https://swanwatch.example.com;"
        " redirects are built on it, never on a request's Host header (unset: paths only).",
    )
    trusted_proxies: list[str] = Field(
        default_factory=list,
        description="Addresses or networks (10.0.0.5, 10.0.0.0/24) of the reverse proxies whose "
        "X-Forwarded-For/-Proto and identity headers are believed; from any other address a "
        "request with an identity header is refused.",
    )
    proxy_auth: bool = Field(
        False,
        description="Take the person from X-Forwarded-User / X-Forwarded-Email, set by a proxy "
        "in trusted_proxies (oauth2-proxy, for one).",
    )
    users: bool = Field(
        False, description="Local users (`swanwatch users add`) sign in with their password."
    )
    history_days: int = Field(
        400, ge=1, le=3660, description="Days of each account's daily risk score kept."
    )

    @field_validator("public_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        url = value.strip().rstrip("/")
        if not url.startswith(("http://", "https://")) or "?" in url or "#" in url:
            raise ValueError(f"public_url {value!r} is not an http(s) address without a query")
        return url

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for item in value:
            try:
                ipaddress.ip_network(item.strip(), strict=False)
            except ValueError:
                raise ValueError(
                    f"trusted_proxies: {item!r} is not an IP address or network (10.0.0.0/24)"
                ) from None
        return [item.strip() for item in value]

    @model_validator(mode="after")
    def _proxies_for_proxy_auth(self) -> BoardConfig:
        if self.proxy_auth and not self.trusted_proxies:
            raise ValueError("proxy_auth needs trusted_proxies: the proxies' addresses")
        return self

    def networks(self) -> list[Network]:
        return [ipaddress.ip_network(item, strict=False) for item in self.trusted_proxies]

    def trusts(self, address: str | None) -> bool:
        """True when ``address`` is a trusted proxy's."""
        if not address:
            return False
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in net for net in self.networks())
