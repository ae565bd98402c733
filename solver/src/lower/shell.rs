//! SHELL: the shell later shell-form RUN, CMD and ENTRYPOINT use.

use crate::error::LowerError;

use super::gofmt::plain_list;
use super::state::StageState;

pub(crate) fn lower(st: &mut StageState, shell: &[String]) -> Result<(), LowerError> {
    st.image.shell = shell.to_vec();
    st.history_empty(format!("SHELL {}", plain_list(shell)));
    Ok(())
}
