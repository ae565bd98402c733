//! LABEL: expanded keys and values into the image config's labels.

use kiln_parser::{KeyValue, Step};

use crate::error::LowerError;

use super::state::StageState;

pub(crate) fn lower(
    st: &mut StageState,
    step: &Step,
    pairs: &[KeyValue],
) -> Result<(), LowerError> {
    let mut created_by = String::from("LABEL");
    let mut set = Vec::with_capacity(pairs.len());
    for p in pairs {
        let k = st.expand(&p.key, step.span)?;
        let v = st.expand(&p.value, step.span)?;
        created_by.push_str(&format!(" {k}={v}"));
        set.push((k, v));
    }
    st.image.update_config(|c| {
        let mut labels = c.labels().clone().unwrap_or_default();
        labels.extend(set);
        c.set_labels(Some(labels));
    });
    st.history_empty(created_by);
    Ok(())
}
