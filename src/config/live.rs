//! The running configuration: readers take a cheap snapshot (`current`) on every request
//! and never block; a reload swaps in a whole new config atomically, or, if the new file is
//! bad, leaves the old one in place and says why.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arc_swap::ArcSwap;

use super::ConfigError;
use super::model::Config;

pub struct Live {
    path: PathBuf,
    config: ArcSwap<Config>,
}

impl Live {
    /// Load `path` for the first time.
    pub fn load(path: impl Into<PathBuf>) -> Result<Live, ConfigError> {
        let path = path.into();
        let config = super::load(&path)?;
        Ok(Live::new(path, config))
    }

    /// Wrap an already loaded config; `reload` will read `path`.
    pub fn new(path: impl Into<PathBuf>, config: Config) -> Live {
        Live {
            path: path.into(),
            config: ArcSwap::from_pointee(config),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The config in force now. Hold the `Arc` for the duration of one unit of work (a
    /// request, a call setup) so all its decisions see the same config.
    pub fn current(&self) -> Arc<Config> {
        self.config.load_full()
    }

    /// Re-read the file. On success the new config is in force and returned; on error the
    /// old config stays in force and the error says what is wrong with the file.
    pub fn reload(&self) -> Result<Arc<Config>, ConfigError> {
        let config = Arc::new(super::load(&self.path)?);
        self.config.store(Arc::clone(&config));
        Ok(config)
    }

    /// Re-read the file and hand the new config to `apply` (which builds what depends on
    /// it, such as the registrar's keys) before it comes into force: if either the file or
    /// `apply` fails, the old config stays, so no part of the switch runs on a config
    /// another part refused.
    pub fn reload_with(
        &self,
        apply: impl FnOnce(&Config) -> Result<(), String>,
    ) -> Result<Arc<Config>, ReloadError> {
        let config = Arc::new(super::load(&self.path).map_err(ReloadError::Config)?);
        apply(&config).map_err(ReloadError::Refused)?;
        self.config.store(Arc::clone(&config));
        Ok(config)
    }
}

/// Why a reload did not take effect.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    /// The file is unreadable or invalid (`file:line:col: why`).
    #[error(transparent)]
    Config(ConfigError),
    /// The file is valid but a part of the switch could not use it (e.g. unusable keys).
    #[error("{0}")]
    Refused(String),
}

impl std::fmt::Debug for Live {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Not the config itself: it holds secrets.
        f.debug_struct("Live")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_reload_keeps_old_config() {
        let dir = std::env::temp_dir().join(format!("switchboard-live-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let file = dir.join("live.toml");
        std::fs::write(&file, "[server]\nrealm = \"one.example\"\n").expect("write");
        let live = Live::load(&file).expect("first load");
        assert_eq!(live.current().server.realm, "one.example");

        // A misspelled key: reload fails, old config stays.
        std::fs::write(&file, "[server]\nrelm = \"two.example\"\n").expect("write");
        let err = live.reload().expect_err("bad file must not load");
        assert_eq!(err.position(), Some((2, 1)), "{err}");
        assert_eq!(live.current().server.realm, "one.example");

        // A missing file: same.
        std::fs::remove_file(&file).expect("remove");
        assert_eq!(live.reload().expect_err("missing").class(), "read");
        assert_eq!(live.current().server.realm, "one.example");

        // A good file: swapped in, and what reload returns is what current sees.
        std::fs::write(&file, "[server]\nrealm = \"three.example\"\n").expect("write");
        let new = live.reload().expect("good file");
        assert!(Arc::ptr_eq(&new, &live.current()));
        assert_eq!(live.current().server.realm, "three.example");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_refused_apply_keeps_the_old_config() {
        let dir =
            std::env::temp_dir().join(format!("switchboard-live-apply-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let file = dir.join("live.toml");
        std::fs::write(&file, "[server]\nrealm = \"one.example\"\n").expect("write");
        let live = Live::load(&file).expect("first load");
        std::fs::write(&file, "[server]\nrealm = \"two.example\"\n").expect("write");
        let err = live
            .reload_with(|cfg| Err(format!("keys for {} unusable", cfg.server.realm)))
            .expect_err("refused");
        assert!(
            matches!(err, ReloadError::Refused(ref why) if why == "keys for two.example unusable")
        );
        assert_eq!(
            live.current().server.realm,
            "one.example",
            "nothing swapped"
        );
        live.reload_with(|_| Ok(())).expect("accepted");
        assert_eq!(live.current().server.realm, "two.example");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
