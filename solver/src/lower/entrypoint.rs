//! ENTRYPOINT: the entrypoint (shell form wrapped in SHELL); it resets a
//! CMD inherited from the base unless this stage set CMD itself.

use kiln_parser::CommandLine;

use crate::error::LowerError;

use super::run::{command_args, quoted};
use super::state::StageState;

pub(crate) fn lower(st: &mut StageState, c: &CommandLine) -> Result<(), LowerError> {
    let args = command_args(st, c);
    let keep_cmd = st.cmd_set;
    st.image.update_config(|cfg| {
        cfg.set_entrypoint((!args.is_empty()).then(|| args.clone()));
        if !keep_cmd {
            cfg.set_cmd(None);
        }
    });
    st.history_empty(format!("ENTRYPOINT {}", quoted(&args)));
    Ok(())
}
