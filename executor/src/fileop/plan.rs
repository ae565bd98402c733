//! Expanding the sources of a COPY/ADD into what gets copied, once, for both
//! the copy itself and the context checksum of its cache key: wildcard
//! matches, `--parents` pivots and include patterns, `--exclude`,
//! `.dockerignore`, and the owner each item is written with.

use super::select::{self, Filters, Match};
use super::{
    CopyOptions, CopyRequest, FileOpError, InlineFile, Owner, PathMatcher, Source, TreeKind,
    pattern, rootpath,
};

/// What one source (or one of its wildcard matches) contributes.
pub(crate) enum Item<'a> {
    /// A file or directory of a tree (the context, another rootfs, or a
    /// download's staging directory).
    Tree {
        m: Box<Match>,
        /// Include pattern of `--parents` (compiled) and its literal leading
        /// components.
        include: Option<(Box<dyn PathMatcher>, Vec<String>)>,
        /// The item is read from [`CopyRequest::tree`] (else from a
        /// download's staging directory).
        from_tree: bool,
    },
    /// A heredoc.
    Inline(&'a InlineFile),
}

impl Item<'_> {
    pub(crate) fn is_dir(&self) -> bool {
        match self {
            Item::Tree { m, .. } => m.meta.is_dir(),
            Item::Inline(_) => false,
        }
    }
}

/// One planned item, with the source it came from (index into
/// [`CopyRequest::sources`]) and the owner its files are written with
/// (`None`: the source's own).
pub(crate) struct Planned<'a> {
    pub(crate) source: usize,
    pub(crate) item: Item<'a>,
    pub(crate) owner: Option<Owner>,
}

/// Everything a COPY/ADD selects.
pub(crate) struct Plan<'a> {
    pub(crate) items: Vec<Planned<'a>>,
    exclude: Option<Box<dyn PathMatcher>>,
    ignore: Option<&'a dyn PathMatcher>,
}

impl Plan<'_> {
    /// The filters for walking below `item`.
    pub(crate) fn filters<'p>(&'p self, item: &'p Item<'_>) -> Filters<'p> {
        match item {
            Item::Tree {
                include, from_tree, ..
            } => Filters {
                ignore: if *from_tree { self.ignore } else { None },
                exclude: self.exclude.as_deref(),
                include: include.as_ref().map(|(c, _)| c.as_ref()),
                include_prefix: include.as_ref().map(|(_, p)| p.as_slice()).unwrap_or(&[]),
            },
            Item::Inline(_) => Filters::default(),
        }
    }
}

/// Splits a `--parents` source at its first `/./` pivot: the directory
/// whose contents are copied, and the pattern (relative to it) of what is
/// kept with its parents. Without a pivot the directory is the root.
fn parents_split(source: &str) -> (String, String) {
    let clean = |p: &str| rootpath::clean(p).join("/");
    match source.split_once("/./") {
        Some((parent, pattern)) => (parent.to_owned(), clean(pattern)),
        None => ("/".to_owned(), clean(source)),
    }
}

pub(crate) fn compile(
    opts: &CopyOptions<'_>,
    patterns: &[String],
) -> Result<Option<Box<dyn PathMatcher>>, FileOpError> {
    if patterns.is_empty() {
        return Ok(None);
    }
    let Some(c) = opts.patterns else {
        return Err(FileOpError::InvalidPattern {
            pattern: patterns.join(" "),
            source: "no pattern compiler was given for --exclude/--parents".into(),
        });
    };
    c.compile(patterns)
        .map(Some)
        .map_err(|source| FileOpError::InvalidPattern {
            pattern: patterns.join(" "),
            source,
        })
}

/// Expands every source of `req`, in order.
pub(crate) fn plan<'a>(req: &CopyRequest<'a>) -> Result<Plan<'a>, FileOpError> {
    let opts = &req.options;
    let ignore = match req.tree.kind {
        TreeKind::Context => req.tree.ignore,
        TreeKind::Rootfs => None,
    };
    let exclude = compile(opts, opts.exclude)?;
    let tree_owner = match req.tree.kind {
        TreeKind::Context => Some(opts.owner.unwrap_or(Owner::ROOT)),
        TreeKind::Rootfs => opts.owner,
    };
    let root_owned = Some(opts.owner.unwrap_or(Owner::ROOT));
    let mut items = Vec::new();
    for (source, s) in req.sources.iter().enumerate() {
        match s {
            Source::Path(p) if opts.parents => {
                let (parent, pat) = parents_split(p);
                let required =
                    !pattern::contains_wildcards(&parent) && !pattern::contains_wildcards(&pat);
                let prefix: Vec<String> = pat
                    .split('/')
                    .take_while(|c| !pattern::contains_wildcards(c))
                    .filter(|c| !c.is_empty())
                    .map(str::to_owned)
                    .collect();
                for m in select::expand(req.tree.root, &parent, ignore)? {
                    if required && !pat.is_empty() {
                        let sub = format!("{}/{}", m.resolved.rel(), pat);
                        select::expand(req.tree.root, &sub, ignore).map_err(|e| match e {
                            FileOpError::SourceNotFound { .. } => {
                                FileOpError::SourceNotFound { path: p.clone() }
                            }
                            e => e,
                        })?;
                    }
                    let include = if pat.is_empty() {
                        None
                    } else {
                        compile(opts, std::slice::from_ref(&pat))?.map(|c| (c, prefix.clone()))
                    };
                    items.push(Planned {
                        source,
                        item: Item::Tree {
                            m: Box::new(m),
                            include,
                            from_tree: true,
                        },
                        owner: tree_owner,
                    });
                }
            }
            Source::Path(p) => {
                for m in select::expand(req.tree.root, p, ignore)? {
                    items.push(Planned {
                        source,
                        item: Item::Tree {
                            m: Box::new(m),
                            include: None,
                            from_tree: true,
                        },
                        owner: tree_owner,
                    });
                }
            }
            Source::Inline(f) => items.push(Planned {
                source,
                item: Item::Inline(f),
                owner: root_owned,
            }),
            Source::Download(d) => {
                for m in select::expand(&d.dir, &d.file_name, None)? {
                    items.push(Planned {
                        source,
                        item: Item::Tree {
                            m: Box::new(m),
                            include: None,
                            from_tree: false,
                        },
                        owner: root_owned,
                    });
                }
            }
        }
    }
    Ok(Plan {
        items,
        exclude,
        ignore,
    })
}
