//! `RUN --mount=...`: the five mount types with all their options.
//!
//! A mount flag is kept as written ([`MountSpec`]) because BuildKit expands
//! its values per stage environment; [`MountSpec::resolve`] expands and
//! types it. At parse time every flag is checked: completely when it holds no
//! `$` (expansion cannot change it then), otherwise its field syntax and
//! `from=`.

use std::collections::BTreeSet;

use crate::error::{ExpandError, MountError};
use crate::expand::{Expanded, Lexer, NoVars, Scope};
use crate::span::Span;

/// One `--mount=` flag as written, checked at parse time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountSpec {
    /// The flag value after `--mount=` (CSV fields `key=value`).
    pub raw: String,
    /// The `from=` stage or image, known before expansion (variables are not
    /// allowed there): the solver adds a dependency on it.
    pub from: Option<String>,
    /// The `--mount` flag in the Dockerfile.
    pub span: Span,
}

impl MountSpec {
    /// Checks `raw` as far as possible without an environment; `span` is the
    /// flag's position.
    pub(crate) fn new(raw: &str, span: Span) -> Result<MountSpec, MountError> {
        let fields = split_fields(raw)?;
        let mut from = None;
        for field in &fields {
            if let Some((key, value)) = field.split_once('=')
                && key.eq_ignore_ascii_case("from")
            {
                if value.find('$').is_some_and(|i| i + 1 != value.len()) {
                    return Err(MountError::FromWithVariable {
                        field: field.clone(),
                    });
                }
                from = Some(value.to_string());
            }
        }
        if !raw.contains('$') {
            let lexer = Lexer::new('\\');
            parse_fields(&fields, &mut |w| lexer.expand(w, &NoVars).map(|e| e.value))?;
        }
        Ok(MountSpec {
            raw: raw.to_string(),
            from,
            span,
        })
    }

    /// Expands every value in `scope` and types the mount. `used_args` of the
    /// result lists the ARGs the values read.
    pub fn resolve(&self, scope: &Scope) -> Result<Expanded<Mount>, MountError> {
        let fields = split_fields(&self.raw)?;
        let mut used_args = BTreeSet::new();
        let mut unset = BTreeSet::new();
        let mount = parse_fields(&fields, &mut |w| {
            let e = scope.expand(w)?;
            used_args.extend(e.used_args);
            unset.extend(e.unset);
            Ok(e.value)
        })?;
        Ok(Expanded {
            value: mount,
            used_args,
            unset,
        })
    }
}

/// A typed `--mount`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mount {
    /// `type=bind` (the default type).
    Bind(BindMount),
    /// `type=cache`.
    Cache(CacheMount),
    /// `type=tmpfs`.
    Tmpfs(TmpfsMount),
    /// `type=secret`.
    Secret(SecretMount),
    /// `type=ssh`.
    Ssh(SshMount),
}

/// `type=bind`: a read-only (unless `rw`) view of the context, a stage or an
/// image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindMount {
    /// `target=` (`dst=`, `destination=`): where it appears.
    pub target: String,
    /// `source=` (`src=`): path in the source; `None` means its root.
    pub source: Option<String>,
    /// `from=`: stage or image; `None` means the build context.
    pub from: Option<String>,
    /// `rw`/`readwrite` (writes are discarded after the step).
    pub readwrite: bool,
}

/// `type=cache`: a persistent cache directory shared between builds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheMount {
    /// `target=`.
    pub target: String,
    /// `id=`; defaults to the target.
    pub id: String,
    /// `sharing=`; defaults to shared.
    pub sharing: CacheSharing,
    /// `from=`: stage or image to seed the cache from.
    pub from: Option<String>,
    /// `source=`: subpath of `from`.
    pub source: Option<String>,
    /// `ro`/`readonly`.
    pub readonly: bool,
    /// `mode=` (octal) of a new cache directory; default 0755.
    pub mode: Option<u32>,
    /// `uid=` of a new cache directory; default 0.
    pub uid: Option<u32>,
    /// `gid=` of a new cache directory; default 0.
    pub gid: Option<u32>,
}

/// `sharing=` of a cache mount.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CacheSharing {
    /// Concurrent writers share it (the default).
    Shared,
    /// A concurrent writer gets a fresh private copy.
    Private,
    /// Writers wait for each other.
    Locked,
}

impl CacheSharing {
    /// The option value.
    pub fn as_str(&self) -> &'static str {
        match self {
            CacheSharing::Shared => "shared",
            CacheSharing::Private => "private",
            CacheSharing::Locked => "locked",
        }
    }
}

/// `type=tmpfs`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TmpfsMount {
    /// `target=`.
    pub target: String,
    /// `size=` in bytes (`64m`, `1g`, `1024`).
    pub size: Option<u64>,
}

/// `type=secret`: a secret of the build (`--secret id=...`) as a file or an
/// environment variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretMount {
    /// `id=` (or `source=`), else the base name of `target`.
    pub id: String,
    /// `target=`; when neither it nor `env` is given,
    /// `/run/secrets/<id>`. `None` only with `env`.
    pub target: Option<String>,
    /// `env=NAME`: expose the secret as this environment variable.
    pub env: Option<String>,
    /// `required[=true]`: fail when the secret is not provided.
    pub required: bool,
    /// `mode=` (octal) of the file; default 0400.
    pub mode: Option<u32>,
    /// `uid=` of the file; default 0.
    pub uid: Option<u32>,
    /// `gid=` of the file; default 0.
    pub gid: Option<u32>,
}

/// `type=ssh`: an SSH agent socket forwarded from the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshMount {
    /// `id=`; default `default`.
    pub id: String,
    /// `target=`; `None` means `/run/buildkit/ssh_agent.<N>` (N counts the
    /// step's ssh mounts from 0).
    pub target: Option<String>,
    /// `required[=true]`.
    pub required: bool,
    /// `mode=` (octal) of the socket; default 0600.
    pub mode: Option<u32>,
    /// `uid=` of the socket; default 0.
    pub uid: Option<u32>,
    /// `gid=` of the socket; default 0.
    pub gid: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Bind,
    Cache,
    Tmpfs,
    Secret,
    Ssh,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Bind => "bind",
            Kind::Cache => "cache",
            Kind::Tmpfs => "tmpfs",
            Kind::Secret => "secret",
            Kind::Ssh => "ssh",
        }
    }

    fn parse(s: &str) -> Option<Kind> {
        match s.to_ascii_lowercase().as_str() {
            "bind" => Some(Kind::Bind),
            "cache" => Some(Kind::Cache),
            "tmpfs" => Some(Kind::Tmpfs),
            "secret" => Some(Kind::Secret),
            "ssh" => Some(Kind::Ssh),
            _ => None,
        }
    }

    /// Whether a mount of this kind takes option `key`.
    fn takes(self, key: Key) -> bool {
        match key {
            Key::Type | Key::Target => true,
            Key::Source => matches!(self, Kind::Bind | Kind::Cache | Kind::Secret),
            Key::From => matches!(self, Kind::Bind | Kind::Cache),
            Key::ReadOnly | Key::ReadWrite => {
                matches!(self, Kind::Bind | Kind::Cache | Kind::Tmpfs)
            }
            Key::Id => matches!(self, Kind::Cache | Kind::Secret | Kind::Ssh),
            Key::Sharing => self == Kind::Cache,
            Key::Size => self == Kind::Tmpfs,
            Key::Required => matches!(self, Kind::Secret | Kind::Ssh),
            Key::Env => self == Kind::Secret,
            Key::Mode | Key::Uid | Key::Gid => {
                matches!(self, Kind::Cache | Kind::Secret | Kind::Ssh)
            }
        }
    }
}

/// A mount option key, aliases folded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Key {
    Type,
    Source,
    Target,
    ReadOnly,
    ReadWrite,
    Required,
    Size,
    Id,
    Sharing,
    From,
    Mode,
    Uid,
    Gid,
    Env,
}

impl Key {
    /// The key of a (lower-cased) option name, `None` for an unknown one.
    fn parse(key: &str) -> Option<Key> {
        Some(match key {
            "type" => Key::Type,
            "source" | "src" => Key::Source,
            "target" | "dst" | "destination" => Key::Target,
            "readonly" | "ro" => Key::ReadOnly,
            "readwrite" | "rw" => Key::ReadWrite,
            "required" => Key::Required,
            "size" => Key::Size,
            "id" => Key::Id,
            "sharing" => Key::Sharing,
            "from" => Key::From,
            "mode" => Key::Mode,
            "uid" => Key::Uid,
            "gid" => Key::Gid,
            "env" => Key::Env,
            _ => return None,
        })
    }
}

/// Splits a mount value into its comma-separated fields the way Go's
/// `encoding/csv` reads one record (what BuildKit uses): a field that starts
/// with `"` is quoted (`""` inside is one quote) and may hold commas; a quote
/// anywhere else is an error. Hand-written because the `csv` crate accepts
/// bare quotes that BuildKit refuses.
fn split_fields(raw: &str) -> Result<Vec<String>, MountError> {
    let syntax = || MountError::Syntax {
        value: raw.to_string(),
    };
    let mut fields = Vec::new();
    let mut chars = raw.chars().peekable();
    loop {
        let mut field = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next() {
                    None => return Err(syntax()),
                    Some('"') if chars.peek() == Some(&'"') => {
                        chars.next();
                        field.push('"');
                    }
                    Some('"') => break,
                    Some(c) => field.push(c),
                }
            }
            match chars.next() {
                None => {
                    fields.push(field);
                    return Ok(fields);
                }
                Some(',') => fields.push(field),
                Some(_) => return Err(syntax()),
            }
        } else {
            loop {
                match chars.next() {
                    None => {
                        fields.push(field);
                        return Ok(fields);
                    }
                    Some(',') => break,
                    Some('"') => return Err(syntax()),
                    Some(c) => field.push(c),
                }
            }
            fields.push(field);
        }
    }
}

type Expander<'a> = dyn FnMut(&str) -> Result<String, ExpandError> + 'a;

fn parse_bool(key: &str, value: &str) -> Result<bool, MountError> {
    // Go's strconv.ParseBool.
    match value {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
        _ => Err(bad_value(key, value)),
    }
}

fn bad_value(key: &str, value: &str) -> MountError {
    MountError::BadValue {
        key: key.to_string(),
        value: value.to_string(),
    }
}

/// Parses a size like docker's `RAMInBytes`: a decimal number with an
/// optional binary unit `k`, `m`, `g`, `t`, `p` (optionally followed by `b`
/// or `ib`), case-insensitive.
pub(crate) fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let num_len = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(num_len);
    let value: f64 = num.parse().ok()?;
    let unit = unit.trim_start().to_ascii_lowercase();
    let unit = unit
        .strip_suffix("ib")
        .or_else(|| unit.strip_suffix('b'))
        .unwrap_or(&unit);
    let mult: f64 = match unit {
        "" => 1.0,
        "k" => 1024.0,
        "m" => 1024.0 * 1024.0,
        "g" => 1024.0 * 1024.0 * 1024.0,
        "t" => 1024f64.powi(4),
        "p" => 1024f64.powi(5),
        _ => return None,
    };
    let bytes = value * mult;
    (bytes.is_finite() && bytes <= u64::MAX as f64).then_some(bytes as u64)
}

#[derive(Default)]
struct Fields {
    target: Option<String>,
    source: Option<String>,
    from: Option<String>,
    readonly: Option<bool>,
    required: bool,
    size: Option<u64>,
    id: Option<String>,
    sharing: Option<CacheSharing>,
    mode: Option<u32>,
    uid: Option<u32>,
    gid: Option<u32>,
    env: Option<String>,
}

fn parse_fields(fields: &[String], expand: &mut Expander<'_>) -> Result<Mount, MountError> {
    // The type decides which keys are allowed: find it first.
    let mut kind = Kind::Bind;
    for field in fields {
        if let Some((key, value)) = field.split_once('=')
            && key.eq_ignore_ascii_case("type")
        {
            let value = expand(value).map_err(MountError::Expand)?;
            kind = Kind::parse(&value).ok_or(MountError::UnknownType { value })?;
        }
    }
    let mut f = Fields::default();
    for field in fields {
        let (key, value) = match field.split_once('=') {
            Some((k, v)) => (k.to_ascii_lowercase(), Some(v)),
            None => (field.to_ascii_lowercase(), None),
        };
        let Some(canon) = Key::parse(&key) else {
            return Err(MountError::UnexpectedKey {
                key,
                mount_type: kind.name(),
            });
        };
        if canon == Key::Type {
            continue;
        }
        if !kind.takes(canon) {
            return Err(MountError::UnexpectedKey {
                key,
                mount_type: kind.name(),
            });
        }
        let Some(value) = value else {
            match canon {
                Key::ReadOnly => f.readonly = Some(true),
                Key::ReadWrite => f.readonly = Some(false),
                Key::Required => f.required = true,
                _ => {
                    return Err(MountError::NotKeyValue {
                        field: field.clone(),
                    });
                }
            }
            continue;
        };
        let value = expand(value).map_err(MountError::Expand)?;
        let bad = || bad_value(&key, &value);
        match canon {
            Key::Type => {}
            Key::Source => f.source = Some(value),
            Key::Target => f.target = Some(value),
            Key::From => f.from = Some(value),
            Key::ReadOnly => f.readonly = Some(parse_bool(&key, &value)?),
            Key::ReadWrite => f.readonly = Some(!parse_bool(&key, &value)?),
            Key::Required => f.required = parse_bool(&key, &value)?,
            Key::Size => f.size = Some(parse_size(&value).ok_or_else(bad)?),
            Key::Id => f.id = Some(value),
            Key::Sharing => {
                f.sharing = Some(match value.to_ascii_lowercase().as_str() {
                    "shared" => CacheSharing::Shared,
                    "private" => CacheSharing::Private,
                    "locked" => CacheSharing::Locked,
                    _ => return Err(bad()),
                })
            }
            Key::Mode => f.mode = Some(u32::from_str_radix(&value, 8).map_err(|_| bad())?),
            Key::Uid => f.uid = Some(value.parse().map_err(|_| bad())?),
            Key::Gid => f.gid = Some(value.parse().map_err(|_| bad())?),
            Key::Env => f.env = Some(value),
        }
    }
    build(kind, f)
}

fn require_target(kind: Kind, target: Option<String>) -> Result<String, MountError> {
    match target {
        Some(t) if !t.is_empty() => Ok(t),
        _ => Err(MountError::MissingTarget {
            mount_type: kind.name(),
        }),
    }
}

fn base_name(path: &str) -> &str {
    let trimmed = path.trim_end_matches('/');
    trimmed.rsplit('/').next().unwrap_or(trimmed)
}

fn build(kind: Kind, f: Fields) -> Result<Mount, MountError> {
    Ok(match kind {
        Kind::Bind => Mount::Bind(BindMount {
            target: require_target(kind, f.target)?,
            source: f.source,
            from: f.from,
            readwrite: f.readonly == Some(false),
        }),
        Kind::Cache => {
            let target = require_target(kind, f.target)?;
            Mount::Cache(CacheMount {
                id: f
                    .id
                    .filter(|i| !i.is_empty())
                    .unwrap_or_else(|| target.clone()),
                target,
                sharing: f.sharing.unwrap_or(CacheSharing::Shared),
                from: f.from,
                source: f.source,
                readonly: f.readonly.unwrap_or(false),
                mode: f.mode,
                uid: f.uid,
                gid: f.gid,
            })
        }
        Kind::Tmpfs => Mount::Tmpfs(TmpfsMount {
            target: require_target(kind, f.target)?,
            size: f.size,
        }),
        Kind::Secret => {
            if f.source.is_some() && f.id.is_some() {
                return Err(MountError::SecretSourceAndId);
            }
            let target = f.target.filter(|t| !t.is_empty());
            let id = match f.id.or(f.source).filter(|i| !i.is_empty()) {
                Some(id) => id,
                None => match &target {
                    Some(t) if !base_name(t).is_empty() => base_name(t).to_string(),
                    _ => return Err(MountError::SecretWithoutId),
                },
            };
            let target = match (target, &f.env) {
                (Some(t), _) => Some(t),
                (None, Some(_)) => None,
                (None, None) => Some(format!("/run/secrets/{id}")),
            };
            Mount::Secret(SecretMount {
                id,
                target,
                env: f.env,
                required: f.required,
                mode: f.mode,
                uid: f.uid,
                gid: f.gid,
            })
        }
        Kind::Ssh => Mount::Ssh(SshMount {
            id: f
                .id
                .filter(|i| !i.is_empty())
                .unwrap_or_else(|| "default".to_string()),
            target: f.target.filter(|t| !t.is_empty()),
            required: f.required,
            mode: f.mode,
            uid: f.uid,
            gid: f.gid,
        }),
    })
}

#[cfg(test)]
mod tests;
