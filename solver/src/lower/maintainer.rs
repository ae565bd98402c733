//! MAINTAINER (deprecated): the image's author.

use crate::error::LowerError;

use super::state::StageState;

pub(crate) fn lower(st: &mut StageState, text: &str) -> Result<(), LowerError> {
    st.image.oci.set_author(Some(text.to_string()));
    st.history_empty(format!("MAINTAINER {text}"));
    Ok(())
}
