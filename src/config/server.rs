//! The `[server]` section: listeners, device-facing URLs, admin/API secrets, keepalive timing and device auth.

use std::net::{IpAddr, Ipv4Addr};

use serde::{Deserialize, Serialize};

/// `[server]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Address the device listener binds; ⟲ because sockets are bound once at startup.
    pub ip: IpAddr,
    /// WebSocket + HTTP port the badges connect to; ⟲.
    pub port: u16,
    /// Optional second port for the HTTP API only, so it can be firewalled apart from devices; ⟲.
    pub http_port: Option<u16>,
    /// Address put into the device URL when `ip` is a wildcard and the badge needs something routable.
    pub advertise_ip: Option<String>,
    /// Full device URL override (startup log and OTA answer), for deployments behind a proxy.
    pub websocket: Option<String>,
    /// Token handed to badges by the OTA endpoint, which they then present on the handshake.
    pub ota_token: Option<String>,
    /// Minutes east of UTC used for human-facing times (meeting titles, device clock); badges have no timezone.
    pub timezone_offset_min: i32,
    /// Bearer token for the meeting HTTP API; unset leaves the API open (trusted LAN).
    pub meeting_api_token: Option<String>,
    /// Secret for admin messages (`update_config`); unset refuses every admin message.
    pub admin_secret: Option<String>,
    /// How often the `stats` broadcast goes out.
    pub stats_interval_s: u64,
    /// WebSocket ping period; badges on flaky Wi-Fi need it to notice dead links.
    pub ws_ping_interval_s: u64,
    /// How long without a pong before the connection is considered dead.
    pub ws_ping_timeout_s: u64,
    /// Device authentication on the handshake.
    pub auth: AuthConfig,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            ip: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            port: 8000,
            http_port: None,
            advertise_ip: None,
            websocket: None,
            ota_token: None,
            timezone_offset_min: 480,
            meeting_api_token: None,
            admin_secret: None,
            stats_interval_s: 10,
            ws_ping_interval_s: 20,
            ws_ping_timeout_s: 50,
            auth: AuthConfig::default(),
        }
    }
}

/// How a handshake token is checked (PROTOCOL.md §1.4; `crate::net::auth`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthMode {
    #[default]
    Static,
    Jwt,
    Oauth2,
    Mixed,
}

impl AuthMode {
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMode::Static => "static",
            AuthMode::Jwt => "jwt",
            AuthMode::Oauth2 => "oauth2",
            AuthMode::Mixed => "mixed",
        }
    }
}

/// `[server.auth]`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// Off by default so a fresh install works with stock firmware out of the box.
    pub enabled: bool,
    pub mode: AuthMode,
    /// Device ids let in without a token (e.g. bench units).
    pub allowed_devices: Vec<String>,
    /// `[[server.auth.tokens]]`: the static tokens; `name` labels the holder in logs.
    pub tokens: Vec<AuthToken>,
    pub jwt: JwtConfig,
    pub oauth2: OAuth2Config,
}

/// One `[[server.auth.tokens]]` entry.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthToken {
    pub token: String,
    /// Who the token belongs to, logged instead of the token itself.
    pub name: String,
}

/// `[server.auth.jwt]`: for modes `jwt` and `mixed`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct JwtConfig {
    /// The HMAC secret, for HS*.
    pub secret: Option<String>,
    /// For RS*/PS*/ES*/EdDSA: the PEM text itself, or the path of a PEM file (read when the config loads).
    pub public_key: Option<String>,
    pub algorithms: Vec<String>,
    pub audience: Option<String>,
    pub issuer: Option<String>,
    /// Prefix stripped from `sub` to get the device id.
    pub sub_prefix: Option<String>,
}

impl Default for JwtConfig {
    fn default() -> Self {
        Self {
            secret: None,
            public_key: None,
            algorithms: vec!["HS256".to_string()],
            audience: None,
            issuer: None,
            sub_prefix: None,
        }
    }
}

/// `[server.auth.oauth2]`: for modes `oauth2` and `mixed` (RFC 7662 token introspection).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OAuth2Config {
    pub introspection_url: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
}
