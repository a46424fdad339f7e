//! The TOML dial plan (`conf/switchboard.toml`): its shape (`model`), the rules beyond its
//! shape (`validate`), positioned errors (`error`), and the hot-swappable running copy
//! (`live`).
//!
//! Loading goes: parse the TOML into a spanned tree once (syntax errors), deserialize the
//! typed `Config` from it (unknown keys, wrong types), then validate, looking up each
//! problem's position in the same tree. Every error reads `file:line:col: why`.

pub mod dialplan;
mod error;
mod live;
mod locate;
mod model;
pub mod net;
mod patterns;
mod validate;

use std::path::Path;

use serde::Deserialize;
use toml::de::DeTable;

pub use error::{ConfigError, ErrorKind};
pub use live::{Live, ReloadError};
pub use model::{
    Account, Algorithm, ApiKey, Application, BanReply, ChallengeScheme, ClusterConfig, Config,
    DEFAULT_MAX_CONTACTS, HttpMethod, Issuer, LimitsConfig, Number, RegistrarConfig, Route,
    SecurityConfig, ServerConfig, SipUser, StoreConfig, StoreKind, TcpConfig, TenantLimitsConfig,
    TimersConfig, Trunk, WebhooksConfig,
};
pub use net::{Cidr, PortRange};

/// Read and parse the config at `path`; messages name the path as given.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        file: file.clone(),
        source,
    })?;
    parse(&file, &text)
}

/// Parse config `text`; `path_for_messages` is the file name errors start with.
pub fn parse(path_for_messages: &str, text: &str) -> Result<Config, ConfigError> {
    let file = path_for_messages;
    let at = |span, kind, why: &str| ConfigError::at(file, text, span, kind, why);

    let root = DeTable::parse(text).map_err(|e| at(e.span(), ErrorKind::Syntax, e.message()))?;
    // The deserializer consumes its tree; the clone is kept to locate validation problems.
    let mut config = Config::deserialize(toml::de::Deserializer::from(root.clone()))
        .map_err(|e| at(e.span(), ErrorKind::Schema, e.message()))?;

    let spans = locate::Spans::new(root);
    let first = validate::validate(&mut config)
        .into_iter()
        .map(|p| (spans.span(&p.path), p.why))
        // Report the problem nearest the top of the file, as a reader would fix them.
        .min_by_key(|(span, _)| span.start);
    match first {
        Some((span, why)) => Err(at(Some(span), ErrorKind::Invalid, &why)),
        None => Ok(config),
    }
}

#[cfg(test)]
mod tests;
