//! CMD: the default command (shell form wrapped in SHELL), not expanded.

use kiln_parser::CommandLine;

use crate::error::LowerError;

use super::run::{command_args, quoted};
use super::state::StageState;

pub(crate) fn lower(st: &mut StageState, c: &CommandLine) -> Result<(), LowerError> {
    let args = command_args(st, c);
    st.image.update_config(|cfg| {
        cfg.set_cmd(Some(args.clone()));
    });
    st.image.args_escaped = true;
    st.cmd_set = true;
    st.history_empty(format!("CMD {}", quoted(&args)));
    Ok(())
}
