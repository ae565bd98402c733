//! USER: the user later RUN steps, WORKDIR directories and the container
//! run as (resolved in the rootfs when used).

use kiln_parser::Step;

use crate::error::LowerError;

use super::state::StageState;

pub(crate) fn lower(st: &mut StageState, step: &Step, user: &str) -> Result<(), LowerError> {
    let user = st.expand(user, step.span)?;
    st.image.update_config(|c| {
        c.set_user(Some(user.clone()));
    });
    st.history_empty(format!("USER {user}"));
    Ok(())
}
