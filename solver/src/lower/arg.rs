//! ARG: declares build arguments in the stage's scope (value from
//! `--build-arg`, else the default, else the global ARG of that name). They
//! reach RUN's environment but not the image config; RUN's history lists
//! them.

use kiln_parser::{ArgDecl, Step};

use crate::error::LowerError;

use super::state::{StageState, expand_error};

pub(crate) fn lower(st: &mut StageState, step: &Step, decls: &[ArgDecl]) -> Result<(), LowerError> {
    st.scope
        .declare_args(decls)
        .map_err(|e| expand_error(e, step.span))?;
    let mut parts = Vec::with_capacity(decls.len());
    for d in decls {
        let name = st.expand(&d.name, step.span)?;
        let value = st
            .scope
            .args()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.to_string());
        parts.push(match value {
            Some(v) => format!("{name}={v}"),
            None => name.clone(),
        });
        st.declared_args.push(name);
    }
    st.history_empty(format!("ARG {}", parts.join(" ")));
    Ok(())
}
