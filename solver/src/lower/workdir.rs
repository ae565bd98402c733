//! WORKDIR: sets the working directory (relative paths join the current
//! one) and creates it, owned by the current USER, as BuildKit does — a
//! step with a layer unless the directory is `/`.

use kiln_parser::Step;

use crate::error::LowerError;
use crate::op::Op;
use crate::worker::FileAction;

use super::Ctx;
use super::state::{StageState, clean_path, location};

pub(crate) fn lower(
    ctx: &mut Ctx<'_>,
    st: &mut StageState,
    step: &Step,
    path: &str,
) -> Result<(), LowerError> {
    let word = st.expand(path, step.span)?;
    let wd = if word.starts_with('/') {
        clean_path(&word)
    } else {
        clean_path(&format!("{}/{word}", st.workdir()))
    };
    st.image.update_config(|c| {
        c.set_working_dir(Some(wd.clone()));
    });
    if wd == "/" {
        st.history_empty(format!("WORKDIR {wd}"));
        return Ok(());
    }
    let user = st.image.user();
    let inputs: Vec<_> = st.vertex.into_iter().collect();
    let root = st.vertex.map(|_| 0);
    let name = st.step_name(&format!("WORKDIR {wd}"));
    let id = ctx.progress.vertex();
    let n = ctx.graph.add(
        Op::File {
            root,
            actions: vec![FileAction::Mkdir {
                path: wd.clone(),
                mode: 0o755,
                owner: (!user.is_empty()).then_some(user),
            }],
        },
        inputs,
        name,
        Some(location(step.span)),
        id,
    );
    st.vertex = Some(n);
    st.history_layer(format!("WORKDIR {wd}"), n);
    Ok(())
}
