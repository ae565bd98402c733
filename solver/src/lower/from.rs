//! FROM: a stage starts from scratch, an image (its config, env, workdir,
//! user and history) or the final state of an earlier stage.

use crate::error::{LowerError, LowerErrorKind};
use crate::image::{DEFAULT_PATH, ImageConfig, format_platform, same_platform};

use super::state::{PendingHistory, StageState, location};
use super::{Base, Ctx, stage_base};

/// The initial state of stage `idx`.
pub(crate) fn lower_from(ctx: &mut Ctx<'_>, idx: usize) -> Result<StageState, LowerError> {
    let stage = &ctx.df.stages[idx];
    let span = stage.span;
    let display_name = ctx.display_names[idx].clone();
    // Steps shown as `[i/n]`: FROM an image, RUN, COPY, ADD and WORKDIR.
    let counted = stage
        .instructions
        .iter()
        .filter(|s| {
            matches!(
                s.instruction,
                kiln_parser::Instruction::Run(_)
                    | kiln_parser::Instruction::Copy(_)
                    | kiln_parser::Instruction::Add(_)
                    | kiln_parser::Instruction::Workdir(_)
            )
        })
        .count();
    let base = stage_base(ctx, idx)?;
    let mut st = match base {
        Base::Stage(b) => {
            let word = ctx.df.stages[b].name.clone().unwrap_or_default();
            let parent = ctx.stage_state(b, &word, span)?.clone();
            let mut st = parent;
            // ONBUILD triggers do not carry over from a base stage's config.
            st.image.on_build.clear();
            st.index = idx;
            st.display_name = display_name;
            st.cmd_index = 0;
            st.cmd_total = counted;
            st.cmd_set = false;
            st.from_span = span;
            st
        }
        Base::Scratch => {
            let platform = ctx.target_platform.clone();
            StageState {
                index: idx,
                display_name,
                scope: ctx.global.stage(Vec::new()),
                image: ImageConfig::scratch(&platform),
                history: Vec::new(),
                vertex: None,
                platform,
                cmd_index: 0,
                cmd_total: counted,
                declared_args: Vec::new(),
                cmd_set: false,
                in_onbuild: false,
                from_span: span,
            }
        }
        Base::Image { name, platform } => {
            let img = ctx.image(&name, &platform).cloned().ok_or_else(|| {
                LowerError::new(
                    LowerErrorKind::Invalid {
                        what: format!("image {name} was not resolved"),
                    },
                    Some(location(span)),
                )
            })?;
            let mut image = ImageConfig::parse(&img.config_json).map_err(|e| {
                LowerError::new(
                    LowerErrorKind::BaseConfig {
                        name: name.clone(),
                        source: e,
                    },
                    Some(location(span)),
                )
            })?;
            let history = image
                .history()
                .into_iter()
                .map(PendingHistory::Base)
                .collect();
            // The new image's own creation time and triggers are not the base's.
            image.oci.set_created(None);
            image.on_build.clear();
            let image_platform = image.platform();
            let platform = if same_platform(&image_platform, &platform) {
                platform
            } else {
                tracing::warn!(
                    image = %name,
                    wanted = %format_platform(&platform),
                    got = %format_platform(&image_platform),
                    "base image platform differs from the requested platform"
                );
                image_platform
            };
            let mut st = StageState {
                index: idx,
                display_name,
                scope: ctx.global.stage(image.env()),
                image,
                history,
                vertex: None,
                platform: platform.clone(),
                cmd_index: 0,
                cmd_total: counted,
                declared_args: Vec::new(),
                cmd_set: false,
                in_onbuild: false,
                from_span: span,
            };
            if !img.layers.is_empty() {
                st.cmd_total += 1;
                let display = st.step_name(&format!("FROM {}@{}", img.name, img.manifest_digest));
                let n = ctx.image_vertex(&name, &platform, display, span)?;
                st.vertex = Some(n);
            }
            st
        }
    };
    // PATH is always set (BuildKit adds its default to the image).
    if !st.image.env().iter().any(|(k, _)| k == "PATH") {
        st.image.set_env("PATH", DEFAULT_PATH);
        st.scope = refresh_env(&st);
    }
    Ok(st)
}

/// A stage scope whose ENV matches the image config again (after PATH was
/// added), keeping the ARGs already declared.
fn refresh_env(st: &StageState) -> kiln_parser::Scope {
    let mut scope = st.scope.clone();
    let pairs: Vec<kiln_parser::KeyValue> = st
        .image
        .env()
        .into_iter()
        .filter(|(k, _)| !st.scope.env().iter().any(|(e, _)| e == k))
        .map(|(k, v)| kiln_parser::KeyValue {
            key: k,
            value: escape_literal(&v, scope.escape()),
        })
        .collect();
    // Values are escaped, so applying them sets them literally.
    let _ = scope.apply_env(&pairs);
    scope
}

/// `v` written so that word expansion gives back `v` exactly.
pub(crate) fn escape_literal(v: &str, escape: char) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        if matches!(c, '$' | '"' | '\'') || c == escape {
            out.push(escape);
        }
        out.push(c);
    }
    out
}
