//! ONBUILD: a trigger stored in the image config; it runs in builds that
//! start FROM this image (or FROM this stage), right after their FROM.

use kiln_parser::{Instruction, Onbuild, Stage, Step};

use crate::error::LowerError;

use super::state::StageState;

pub(crate) fn lower(st: &mut StageState, o: &Onbuild) -> Result<(), LowerError> {
    st.image.on_build.push(o.expression.clone());
    Ok(())
}

/// The triggers a stage built FROM `base` (a stage) inherits: its ONBUILD
/// instructions, as steps at their own positions.
pub(crate) fn stage_triggers(base: &Stage) -> Vec<Step> {
    base.instructions
        .iter()
        .filter_map(|s| match &s.instruction {
            Instruction::Onbuild(o) => Some(Step {
                span: s.span,
                original: o.expression.clone(),
                instruction: (*o.instruction).clone(),
            }),
            _ => None,
        })
        .collect()
}
