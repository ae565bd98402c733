//! VOLUME: mount points recorded in the image config.

use kiln_parser::Step;

use crate::error::LowerError;

use super::gofmt::plain_list;
use super::state::{StageState, invalid};

pub(crate) fn lower(
    st: &mut StageState,
    step: &Step,
    volumes: &[String],
) -> Result<(), LowerError> {
    let mut paths = Vec::with_capacity(volumes.len());
    for v in volumes {
        let p = st.expand(v, step.span)?;
        if p.is_empty() {
            return Err(invalid(
                "VOLUME specified can not be an empty string",
                step.span,
            ));
        }
        paths.push(p);
    }
    st.image.update_config(|c| {
        let mut all = c.volumes().clone().unwrap_or_default();
        for p in &paths {
            if !all.contains(p) {
                all.push(p.clone());
            }
        }
        all.sort();
        c.set_volumes(Some(all));
    });
    st.history_empty(format!("VOLUME {}", plain_list(&paths)));
    Ok(())
}
