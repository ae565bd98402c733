//! ENV: every pair is expanded against the environment from before the
//! instruction, then all are set, in the image config and in the scope.

use kiln_parser::{KeyValue, Step};

use crate::error::LowerError;

use super::state::{StageState, expand_error};

pub(crate) fn lower(
    st: &mut StageState,
    step: &Step,
    pairs: &[KeyValue],
) -> Result<(), LowerError> {
    let mut expanded = Vec::with_capacity(pairs.len());
    for p in pairs {
        expanded.push((
            st.expand(&p.key, step.span)?,
            st.expand(&p.value, step.span)?,
        ));
    }
    st.scope
        .apply_env(pairs)
        .map_err(|e| expand_error(e, step.span))?;
    let mut created_by = String::from("ENV");
    for (k, v) in &expanded {
        st.image.set_env(k, v);
        created_by.push_str(&format!(" {k}={v}"));
    }
    st.history_empty(created_by);
    Ok(())
}
