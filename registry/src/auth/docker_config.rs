//! docker's client configuration file (`~/.docker/config.json`): reading a
//! registry's credentials and writing them back, keeping every other key.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Map, Value};

use super::{CredentialError, CredentialSource, Credentials, Secret, helper};

/// The key docker uses for Docker Hub in `auths` and with helpers.
const DOCKER_HUB_KEY: &str = "https://index.docker.io/v1/";

/// The config file kiln reads: `$DOCKER_CONFIG/config.json`, else
/// `$HOME/.docker/config.json`.
pub fn default_config_path() -> Result<PathBuf, CredentialError> {
    if let Some(dir) = std::env::var_os("DOCKER_CONFIG").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(dir).join("config.json"));
    }
    let home = std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .ok_or(CredentialError::NoHome)?;
    Ok(PathBuf::from(home).join(".docker/config.json"))
}

/// The name under which docker files a registry's credentials: the host
/// (and port) for most registries, `https://index.docker.io/v1/` for Docker
/// Hub.
pub fn registry_key(registry: &str) -> String {
    let host = normalize_registry(registry);
    if host == "docker.io" {
        DOCKER_HUB_KEY.to_string()
    } else {
        host
    }
}

/// Reduces a config key or a user-typed registry (`https://host:5000/v2/`)
/// to `host[:port]`; Docker Hub's aliases become `docker.io`.
pub fn normalize_registry(key: &str) -> String {
    let rest = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    let host = rest.split('/').next().unwrap_or(rest).to_ascii_lowercase();
    match host.as_str() {
        "index.docker.io" | "registry-1.docker.io" | "docker.io" => "docker.io".to_string(),
        _ => host,
    }
}

/// A loaded config file. Keys kiln does not know are kept as they are when it
/// writes the file back.
#[derive(Debug, Clone)]
pub struct DockerConfig {
    path: PathBuf,
    doc: Map<String, Value>,
}

impl DockerConfig {
    /// Loads the default config file ([`default_config_path`]).
    pub fn load_default() -> Result<DockerConfig, CredentialError> {
        DockerConfig::load(default_config_path()?)
    }

    /// Loads `path`; a missing file is an empty configuration.
    pub fn load(path: impl Into<PathBuf>) -> Result<DockerConfig, CredentialError> {
        let path = path.into();
        let doc = match fs::read(&path) {
            Ok(bytes) if bytes.iter().all(u8::is_ascii_whitespace) => Map::new(),
            Ok(bytes) => {
                serde_json::from_slice(&bytes).map_err(|source| CredentialError::Parse {
                    path: path.clone(),
                    source,
                })?
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Map::new(),
            Err(source) => return Err(CredentialError::Read { path, source }),
        };
        Ok(DockerConfig { path, doc })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The helper that holds this registry's credentials, if any:
    /// `credHelpers[registry]`, else `credsStore`.
    fn helper_for(&self, registry: &str) -> Option<String> {
        let wanted = normalize_registry(registry);
        let per_registry = self
            .doc
            .get("credHelpers")
            .and_then(Value::as_object)
            .and_then(|helpers| {
                helpers
                    .iter()
                    .find(|(k, _)| normalize_registry(k) == wanted)
                    .and_then(|(_, v)| v.as_str())
            });
        per_registry
            .or_else(|| self.doc.get("credsStore").and_then(Value::as_str))
            .filter(|name| !name.is_empty())
            .map(str::to_string)
    }

    /// Where `kiln login` stores this registry's credentials.
    pub fn source_for(&self, registry: &str) -> CredentialSource {
        match self.helper_for(registry) {
            Some(name) => CredentialSource::Helper(name),
            None => CredentialSource::File(self.path.clone()),
        }
    }

    /// The `auths` entry for a registry, whatever spelling its key has.
    fn auth_entry(&self, registry: &str) -> Option<(&String, &Map<String, Value>)> {
        let wanted = normalize_registry(registry);
        let auths = self.doc.get("auths")?.as_object()?;
        // An exact key wins over another spelling of the same host.
        let key = registry_key(registry);
        if let Some((k, Value::Object(entry))) = auths.get_key_value(&key) {
            return Some((k, entry));
        }
        auths.iter().find_map(|(k, v)| match v {
            Value::Object(entry) if normalize_registry(k) == wanted => Some((k, entry)),
            _ => None,
        })
    }

    /// The credentials for `registry` (`host[:port]`, `docker.io` for Docker
    /// Hub), or `None` to go anonymous.
    pub fn get(&self, registry: &str) -> Result<Option<Credentials>, CredentialError> {
        if let Some(name) = self.helper_for(registry) {
            let found = helper::get(&helper::program(&name), &registry_key(registry))?;
            if found.is_some() {
                return Ok(found);
            }
            // A helper that knows nothing of the registry: fall through to the
            // file, as containers/image does.
        }
        let Some((_, entry)) = self.auth_entry(registry) else {
            return Ok(None);
        };
        if entry
            .get("identitytoken")
            .and_then(Value::as_str)
            .is_some_and(|t| !t.is_empty())
        {
            return Err(CredentialError::IdentityToken {
                registry: registry.to_string(),
                held_by: self.path.display().to_string(),
            });
        }
        if let Some(auth) = entry
            .get("auth")
            .and_then(Value::as_str)
            .filter(|a| !a.is_empty())
        {
            let bad = || CredentialError::BadAuthEntry {
                registry: registry.to_string(),
                path: self.path.clone(),
            };
            let decoded = BASE64.decode(auth.trim()).map_err(|_| bad())?;
            let decoded = String::from_utf8(decoded).map_err(|_| bad())?;
            let (user, pass) = decoded.split_once(':').ok_or_else(bad)?;
            return Ok(Some(Credentials {
                username: user.to_string(),
                password: Secret::new(pass),
            }));
        }
        // The old format kept the two fields apart.
        match (
            entry.get("username").and_then(Value::as_str),
            entry.get("password").and_then(Value::as_str),
        ) {
            (Some(user), Some(pass)) if !user.is_empty() => Ok(Some(Credentials {
                username: user.to_string(),
                password: Secret::new(pass),
            })),
            _ => Ok(None),
        }
    }

    /// Stores credentials for `registry` (in its helper when one is
    /// configured, else base64 in `auths`) and writes the file back.
    pub fn store(
        &mut self,
        registry: &str,
        creds: &Credentials,
    ) -> Result<CredentialSource, CredentialError> {
        let key = registry_key(registry);
        let source = self.source_for(registry);
        self.remove_auth_entries(registry);
        let auths = self.auths_mut();
        match &source {
            CredentialSource::Helper(name) => {
                helper::store(&helper::program(name), &key, creds)?;
                // docker leaves an empty entry so `docker info` lists the registry.
                auths.insert(key, Value::Object(Map::new()));
            }
            CredentialSource::File(_) => {
                let auth = BASE64.encode(format!("{}:{}", creds.username, creds.password.expose()));
                let mut entry = Map::new();
                entry.insert("auth".into(), Value::String(auth));
                auths.insert(key, Value::Object(entry));
            }
        }
        self.save()?;
        Ok(source)
    }

    /// Forgets the registry's credentials (in its helper and in the file).
    /// Returns whether there was anything to forget.
    pub fn erase(&mut self, registry: &str) -> Result<bool, CredentialError> {
        let mut found = false;
        if let Some(name) = self.helper_for(registry) {
            found |= helper::erase(&helper::program(&name), &registry_key(registry))?;
        }
        if self.remove_auth_entries(registry) {
            found = true;
            self.save()?;
        }
        Ok(found)
    }

    fn auths_mut(&mut self) -> &mut Map<String, Value> {
        let auths = self
            .doc
            .entry("auths")
            .or_insert_with(|| Value::Object(Map::new()));
        if !auths.is_object() {
            *auths = Value::Object(Map::new());
        }
        auths
            .as_object_mut()
            .expect("auths was just made an object")
    }

    /// Removes every `auths` key that names this registry; true if any did.
    fn remove_auth_entries(&mut self, registry: &str) -> bool {
        let wanted = normalize_registry(registry);
        let Some(auths) = self.doc.get_mut("auths").and_then(Value::as_object_mut) else {
            return false;
        };
        let before = auths.len();
        auths.retain(|k, _| normalize_registry(k) != wanted);
        auths.len() != before
    }

    /// Writes the file atomically with mode 0600 (its directory 0700 when
    /// kiln creates it): temp file, fsync, rename, fsync the directory.
    fn save(&self) -> Result<(), CredentialError> {
        let write_err = |source| CredentialError::Write {
            path: self.path.clone(),
            source,
        };
        let dir = self
            .path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        if !dir.exists() {
            fs::create_dir_all(dir).map_err(write_err)?;
            fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(write_err)?;
        }
        let mut bytes = serde_json::to_vec_pretty(&self.doc).expect("a JSON map serialises");
        bytes.push(b'\n');
        let name = self
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "config.json".into());
        let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
        let result = (|| {
            let mut file = OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&tmp)?;
            // An existing temp file keeps its old mode: set it explicitly.
            file.set_permissions(fs::Permissions::from_mode(0o600))?;
            file.write_all(&bytes)?;
            file.sync_all()?;
            fs::rename(&tmp, &self.path)?;
            fs::File::open(dir)?.sync_all()
        })();
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result.map_err(write_err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config_with(json: &str) -> (tempfile::TempDir, DockerConfig) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        fs::write(&path, json).unwrap();
        let cfg = DockerConfig::load(&path).unwrap();
        (dir, cfg)
    }

    #[test]
    fn keys_normalise_like_docker() {
        assert_eq!(registry_key("docker.io"), DOCKER_HUB_KEY);
        assert_eq!(registry_key("index.docker.io"), DOCKER_HUB_KEY);
        assert_eq!(registry_key("https://127.0.0.1:5000/v2/"), "127.0.0.1:5000");
        assert_eq!(registry_key("Registry.Example.com"), "registry.example.com");
    }

    #[test]
    fn reads_auth_entries_under_any_spelling() {
        // "alice:s3cr:et" — the password may itself hold a colon.
        let (_d, cfg) = config_with(
            r#"{"auths":{"https://127.0.0.1:5000":{"auth":"YWxpY2U6czNjcjpldA=="},
               "https://index.docker.io/v1/":{"auth":"Ym9iOmh1Yg=="}}}"#,
        );
        let c = cfg.get("127.0.0.1:5000").unwrap().unwrap();
        assert_eq!(c.username, "alice");
        assert_eq!(c.password.expose(), "s3cr:et");
        assert_eq!(cfg.get("docker.io").unwrap().unwrap().username, "bob");
        assert!(cfg.get("quay.io").unwrap().is_none());
    }

    #[test]
    fn missing_file_is_empty_and_bad_entries_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = DockerConfig::load(dir.path().join("none.json")).unwrap();
        assert!(cfg.get("x.io").unwrap().is_none());
        let (_d, cfg) = config_with(r#"{"auths":{"x.io":{"auth":"bm9jb2xvbg=="}}}"#);
        assert!(matches!(
            cfg.get("x.io"),
            Err(CredentialError::BadAuthEntry { .. })
        ));
        let (_d, cfg) = config_with(r#"{"auths":{"x.io":{"identitytoken":"tok"}}}"#);
        assert!(matches!(
            cfg.get("x.io"),
            Err(CredentialError::IdentityToken { .. })
        ));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        fs::write(&path, "{not json").unwrap();
        assert!(matches!(
            DockerConfig::load(&path),
            Err(CredentialError::Parse { .. })
        ));
    }

    #[test]
    fn store_writes_0600_keeps_other_keys_and_erase_forgets() {
        let (dir, mut cfg) = config_with(
            r#"{"psFormat":"table","auths":{"https://127.0.0.1:5000":{"auth":"b2xkOm9sZA=="},"other.io":{"auth":"YTpi"}}}"#,
        );
        let creds = Credentials {
            username: "alice".into(),
            password: Secret::new("pw"),
        };
        let source = cfg.store("127.0.0.1:5000", &creds).unwrap();
        assert_eq!(
            source,
            CredentialSource::File(dir.path().join("config.json"))
        );
        let path = dir.path().join("config.json");
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let doc: Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
        assert_eq!(doc["psFormat"], "table");
        assert_eq!(doc["auths"]["127.0.0.1:5000"]["auth"], "YWxpY2U6cHc=");
        assert!(doc["auths"].get("https://127.0.0.1:5000").is_none());
        let reread = DockerConfig::load(&path).unwrap();
        assert_eq!(reread.get("127.0.0.1:5000").unwrap(), Some(creds));
        let mut cfg = reread;
        assert!(cfg.erase("127.0.0.1:5000").unwrap());
        assert!(!cfg.erase("127.0.0.1:5000").unwrap());
        let reread = DockerConfig::load(&path).unwrap();
        assert!(reread.get("127.0.0.1:5000").unwrap().is_none());
        assert!(reread.get("other.io").unwrap().is_some());
        // no temp file left beside it
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn store_creates_a_private_directory() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("home/.docker/config.json");
        let mut cfg = DockerConfig::load(&path).unwrap();
        let creds = Credentials {
            username: "u".into(),
            password: Secret::new("p"),
        };
        cfg.store("localhost:5000", &creds).unwrap();
        let mode = fs::metadata(path.parent().unwrap())
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o700);
    }

    #[test]
    fn helpers_are_chosen_per_registry_then_default() {
        let (_d, cfg) = config_with(
            r#"{"credsStore":"desktop","credHelpers":{"gcr.io":"gcloud","https://Quay.io":"quayhelper"}}"#,
        );
        assert_eq!(
            cfg.source_for("gcr.io"),
            CredentialSource::Helper("gcloud".into())
        );
        assert_eq!(
            cfg.source_for("quay.io"),
            CredentialSource::Helper("quayhelper".into())
        );
        assert_eq!(
            cfg.source_for("127.0.0.1:5000"),
            CredentialSource::Helper("desktop".into())
        );
    }

    #[test]
    fn debug_output_never_shows_the_password() {
        let creds = Credentials {
            username: "alice".into(),
            password: Secret::new("hunter2"),
        };
        let shown = format!("{creds:?}");
        assert!(
            shown.contains("alice") && !shown.contains("hunter2"),
            "{shown}"
        );
    }
}
