//! The operations a build graph is made of, and their cache-key definitions.
//!
//! An [`Op`] refers to the vertices it reads by position in its vertex's
//! input list ([`SourceRef::Input`]); at execution the scheduler replaces
//! those by the inputs' layer chains and hands the worker plain
//! [`FileSource`]s.

use oci_spec::image::Digest;
use serde::ser::SerializeStruct;
use serde::{Serialize, Serializer};

use crate::cachekey::{self, CacheKey};
use crate::worker::{ExecSpec, FileAction, FileSource, Layer, MountKind, ResolvedImage};

/// Where an operation reads content from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceRef {
    /// The main build context.
    Context,
    /// The result of input `n` of the vertex.
    Input(usize),
    /// An empty filesystem.
    Scratch,
    /// A URL (ADD).
    Url {
        url: String,
        checksum: Option<Digest>,
    },
    /// Bytes from the Dockerfile (heredocs): one file `name` with `mode`.
    Inline {
        name: String,
        data: Vec<u8>,
        mode: u32,
    },
}

impl Serialize for SourceRef {
    /// Inline data is keyed by its digest, not spelled out.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            SourceRef::Context => s.serialize_str("context"),
            SourceRef::Scratch => s.serialize_str("scratch"),
            SourceRef::Input(n) => {
                let mut st = s.serialize_struct("Input", 1)?;
                st.serialize_field("input", n)?;
                st.end()
            }
            SourceRef::Url { url, checksum } => {
                let mut st = s.serialize_struct("Url", 2)?;
                st.serialize_field("url", url)?;
                st.serialize_field("checksum", checksum)?;
                st.end()
            }
            SourceRef::Inline { name, data, mode } => {
                let mut st = s.serialize_struct("Inline", 3)?;
                st.serialize_field("name", name)?;
                st.serialize_field("data", &cachekey::sha256_digest(data))?;
                st.serialize_field("mode", mode)?;
                st.end()
            }
        }
    }
}

impl SourceRef {
    /// The worker's view of this source, given the inputs' layer chains.
    pub(crate) fn resolve(&self, inputs: &[Vec<Layer>]) -> FileSource {
        match self {
            SourceRef::Context => FileSource::Context,
            SourceRef::Scratch => FileSource::Layers(Vec::new()),
            SourceRef::Input(n) => FileSource::Layers(inputs[*n].clone()),
            SourceRef::Url { url, checksum } => FileSource::Url {
                url: url.clone(),
                checksum: checksum.clone(),
            },
            SourceRef::Inline { name, data, mode } => FileSource::Inline {
                name: name.clone(),
                data: data.clone(),
                mode: *mode,
            },
        }
    }
}

/// A vertex's operation.
#[derive(Debug, Clone)]
pub enum Op {
    /// An image source (FROM an image).
    Image(ResolvedImage),
    /// Run a process on top of input `root` (RUN).
    Exec {
        root: Option<usize>,
        spec: ExecSpec<SourceRef>,
        /// Proxy variables from build args: in the process environment but
        /// never in the cache key or the history, as BuildKit does.
        proxy_env: Vec<String>,
    },
    /// File actions on top of input `root` (COPY, ADD, WORKDIR).
    File {
        root: Option<usize>,
        actions: Vec<FileAction<SourceRef>>,
    },
    /// Input 0's layers followed by the layer input 1 added (`COPY --link`).
    Merge,
}

#[derive(Serialize)]
struct ImageKeyDef<'a> {
    config: &'a Digest,
}

#[derive(Serialize)]
struct ExecKeyDef<'a> {
    root: Option<usize>,
    spec: &'a ExecSpec<SourceRef>,
}

#[derive(Serialize)]
struct FileKeyDef<'a> {
    root: Option<usize>,
    actions: &'a [FileAction<SourceRef>],
}

#[derive(Serialize)]
struct MergeKeyDef {}

impl Op {
    /// The type tag of this operation in cache keys.
    pub fn type_tag(&self) -> &'static str {
        match self {
            Op::Image(_) => "image",
            Op::Exec { .. } => "exec",
            Op::File { .. } => "file",
            Op::Merge => "merge",
        }
    }

    /// This operation's key, given its inputs' keys and the content
    /// checksums of what it reads from outside the graph.
    pub fn cache_key(&self, inputs: &[CacheKey], content: &[Digest]) -> CacheKey {
        let tag = self.type_tag();
        match self {
            Op::Image(img) => cachekey::compute(
                tag,
                &ImageKeyDef {
                    config: &img.config_digest,
                },
                inputs,
                content,
            ),
            Op::Exec { root, spec, .. } => {
                cachekey::compute(tag, &ExecKeyDef { root: *root, spec }, inputs, content)
            }
            Op::File { root, actions } => cachekey::compute(
                tag,
                &FileKeyDef {
                    root: *root,
                    actions,
                },
                inputs,
                content,
            ),
            Op::Merge => cachekey::compute(tag, &MergeKeyDef {}, inputs, content),
        }
    }

    /// What must be checksummed at build time to key this operation: the
    /// files it reads from the context (COPY/ADD sources, bind mounts) and
    /// URLs without a pinned checksum.
    pub fn content_requests(&self) -> Vec<ContentRequest> {
        let mut out = Vec::new();
        match self {
            Op::File { actions, .. } => {
                for a in actions {
                    if let FileAction::Copy(c) = a {
                        match &c.from {
                            SourceRef::Context => out.push(ContentRequest {
                                from: SourceRef::Context,
                                sources: c.sources.clone(),
                                excludes: c.excludes.clone(),
                                parents: c.parents,
                                apply_dockerignore: c.apply_dockerignore,
                            }),
                            SourceRef::Url { checksum: None, .. } => out.push(ContentRequest {
                                from: c.from.clone(),
                                sources: Vec::new(),
                                excludes: Vec::new(),
                                parents: false,
                                apply_dockerignore: false,
                            }),
                            _ => {}
                        }
                    }
                }
            }
            Op::Exec { spec, .. } => {
                for m in &spec.mounts {
                    let from = match &m.kind {
                        MountKind::Bind { from, source, .. } => Some((from, source)),
                        MountKind::Cache {
                            from: Some((from, source)),
                            ..
                        } => Some((from, source)),
                        _ => None,
                    };
                    if let Some((SourceRef::Context, source)) = from {
                        out.push(ContentRequest {
                            from: SourceRef::Context,
                            sources: vec![source.clone()],
                            excludes: Vec::new(),
                            parents: false,
                            apply_dockerignore: true,
                        });
                    }
                }
            }
            Op::Image(_) | Op::Merge => {}
        }
        out
    }
}

/// The identity of a result: its layers (diffIDs), bottom first.
pub fn result_identity(chain: &[Layer]) -> CacheKey {
    let ids: Vec<&Digest> = chain.iter().map(|l| &l.diff_id).collect();
    cachekey::compute("result", &ids, &[], &[])
}

impl Op {
    /// What a file operation copies from other stages (`COPY --from=STAGE`):
    /// per copy action, the input it reads and what it selects there. Once
    /// those stages are built, checksums of exactly these files give the
    /// operation a second, content-based key (as BuildKit's), so a stage
    /// change that leaves the copied files identical still hits.
    pub fn stage_content_requests(&self) -> Vec<(usize, ContentRequest)> {
        let Op::File { root, actions } = self else {
            return Vec::new();
        };
        actions
            .iter()
            .filter_map(|a| match a {
                FileAction::Copy(c) => match c.from {
                    SourceRef::Input(i) if Some(i) != *root => Some((
                        i,
                        ContentRequest {
                            from: c.from.clone(),
                            sources: c.sources.clone(),
                            excludes: c.excludes.clone(),
                            parents: c.parents,
                            apply_dockerignore: false,
                        },
                    )),
                    _ => None,
                },
                _ => None,
            })
            .collect()
    }

    /// The result-based key (BuildKit's content-based cache key): the
    /// definition key's document over what the inputs *are* instead of how
    /// they were made — `inputs` holds each input result's identity
    /// ([`result_identity`]), the inputs copied from are replaced by a fixed
    /// marker, and the checksums of what is copied from them are appended
    /// to `content`.
    pub fn result_cache_key(
        &self,
        inputs: &[CacheKey],
        content: &[Digest],
        stage_content: &[(usize, Digest)],
    ) -> CacheKey {
        let marker = cachekey::compute("content-keyed-input", &(), &[], &[]);
        let mut inputs = inputs.to_vec();
        for (i, _) in stage_content {
            if let Some(k) = inputs.get_mut(*i) {
                *k = marker;
            }
        }
        let mut content = content.to_vec();
        content.extend(stage_content.iter().map(|(_, d)| d.clone()));
        self.cache_key(&inputs, &content)
    }
}

/// A content checksum the scheduler asks the worker for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContentRequest {
    pub from: SourceRef,
    pub sources: Vec<String>,
    pub excludes: Vec<String>,
    pub parents: bool,
    pub apply_dockerignore: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::worker::{CopyAction, Mount, NetworkMode, Security};

    fn exec(args: &[&str], env: &[&str]) -> Op {
        Op::Exec {
            root: Some(0),
            spec: ExecSpec {
                args: args.iter().map(|s| s.to_string()).collect(),
                env: env.iter().map(|s| s.to_string()).collect(),
                cwd: "/".into(),
                user: String::new(),
                network: NetworkMode::Default,
                security: Security::Sandbox,
                mounts: vec![],
                secret_env: vec![],
            },
            proxy_env: vec![],
        }
    }

    fn copy(sources: &[&str], dest: &str) -> Op {
        Op::File {
            root: Some(0),
            actions: vec![FileAction::Copy(CopyAction {
                from: SourceRef::Context,
                sources: sources.iter().map(|s| s.to_string()).collect(),
                dest: dest.into(),
                chown: None,
                chmod: None,
                link: false,
                parents: false,
                excludes: vec![],
                unpack: false,
                keep_git_dir: false,
                apply_dockerignore: true,
            })],
        }
    }

    /// Golden keys: these hex strings may only change together with
    /// `SCHEMA_VERSION` (and docs/cache-keys.md).
    #[test]
    fn golden_keys() {
        let root = cachekey::compute("image", &"base", &[], &[]);
        assert_eq!(
            root.hex(),
            "080c0f3c982ab50565417b3623b2beebf8479f64c3974672d5292dd65a801a80"
        );
        let run = exec(&["/bin/sh", "-c", "echo hi"], &["PATH=/bin"]);
        let Op::Exec { root: r, spec, .. } = &run else {
            unreachable!()
        };
        let bytes = cachekey::canonical_bytes("exec", &ExecKeyDef { root: *r, spec }, &[root], &[]);
        assert_eq!(
            String::from_utf8(bytes).unwrap(),
            concat!(
                r#"{"schema":1,"type":"exec","def":{"root":0,"spec":{"args":["/bin/sh","-c","echo hi"],"#,
                r#""env":["PATH=/bin"],"cwd":"/","user":"","network":"default","security":"sandbox","#,
                r#""mounts":[],"secret_env":[]}},"inputs":["sha256:080c0f3c982ab50565417b3623b2beebf8479f64c3974672d5292dd65a801a80"],"#,
                r#""content":[]}"#
            )
        );
        assert_eq!(
            run.cache_key(&[root], &[]).hex(),
            "5c5e599a917e2dbc6f34f7cdaabcf7dc8f353ee9847012526eb9cc06a78d8313"
        );
        let content = cachekey::sha256_digest(b"files");
        assert_eq!(
            copy(&["a.txt"], "/app/")
                .cache_key(&[root], &[content])
                .hex(),
            "fea4f156671acb1aa40d3de06f0421e966a5bc3a01f0acbe9b25a23773bcd026"
        );
    }

    #[test]
    fn exec_key_covers_what_changes_the_result() {
        let root = cachekey::compute("image", &"base", &[], &[]);
        let base = exec(&["/bin/sh", "-c", "echo hi"], &["A=1"]).cache_key(&[root], &[]);
        assert_ne!(
            base,
            exec(&["/bin/sh", "-c", "echo ho"], &["A=1"]).cache_key(&[root], &[])
        );
        assert_ne!(
            base,
            exec(&["/bin/sh", "-c", "echo hi"], &["A=2"]).cache_key(&[root], &[])
        );
        let other_root = cachekey::compute("image", &"other", &[], &[]);
        assert_ne!(
            base,
            exec(&["/bin/sh", "-c", "echo hi"], &["A=1"]).cache_key(&[other_root], &[])
        );
        // Proxy variables are not part of the key.
        let mut with_proxy = exec(&["/bin/sh", "-c", "echo hi"], &["A=1"]);
        if let Op::Exec { proxy_env, .. } = &mut with_proxy {
            proxy_env.push("http_proxy=http://proxy:3128".into());
        }
        assert_eq!(base, with_proxy.cache_key(&[root], &[]));
    }

    #[test]
    fn secret_mounts_key_by_id_only_and_user_network_count() {
        let root = cachekey::compute("image", &"base", &[], &[]);
        let mut op = exec(&["cat", "/run/secrets/token"], &[]);
        let base = op.cache_key(&[root], &[]);
        if let Op::Exec { spec, .. } = &mut op {
            spec.mounts.push(Mount {
                target: "/run/secrets/token".into(),
                kind: MountKind::Secret {
                    id: "token".into(),
                    required: false,
                    mode: None,
                    uid: None,
                    gid: None,
                },
            });
        }
        let with_secret = op.cache_key(&[root], &[]);
        assert_ne!(base, with_secret);
        if let Op::Exec { spec, .. } = &mut op {
            spec.user = "app".into();
        }
        assert_ne!(with_secret, op.cache_key(&[root], &[]));
        if let Op::Exec { spec, .. } = &mut op {
            spec.user = String::new();
            spec.network = NetworkMode::None;
        }
        assert_ne!(with_secret, op.cache_key(&[root], &[]));
    }

    #[test]
    fn copy_key_follows_content_not_names_only() {
        let root = cachekey::compute("image", &"base", &[], &[]);
        let a = cachekey::sha256_digest(b"a");
        let b = cachekey::sha256_digest(b"b");
        let op = copy(&["src/"], "/app/");
        assert_eq!(
            op.cache_key(&[root], std::slice::from_ref(&a)),
            op.cache_key(&[root], std::slice::from_ref(&a))
        );
        assert_ne!(
            op.cache_key(&[root], std::slice::from_ref(&a)),
            op.cache_key(&[root], &[b])
        );
        assert_ne!(
            op.cache_key(&[root], std::slice::from_ref(&a)),
            copy(&["src/"], "/other/").cache_key(&[root], &[a])
        );
        assert_eq!(op.content_requests().len(), 1);
    }

    #[test]
    fn inline_data_is_keyed_by_digest() {
        let src = SourceRef::Inline {
            name: "f".into(),
            data: b"hello".to_vec(),
            mode: 0o644,
        };
        let json = serde_json::to_string(&src).unwrap();
        assert!(json.contains("sha256:"), "{json}");
        assert!(!json.contains("104"), "{json}");
    }
}
