//! ADD: COPY plus remote URLs (downloaded, `--checksum` verified, mode 600)
//! and local tar archives extracted. Shares the COPY lowering.

use kiln_parser::{Add, Step};

use crate::error::LowerError;

use super::Ctx;
use super::copy::{AddConfig, CopyConfig, lower_copy_like};
use super::state::StageState;

pub(crate) fn lower(
    ctx: &mut Ctx<'_>,
    st: &mut StageState,
    step: &Step,
    add: &Add,
) -> Result<(), LowerError> {
    lower_copy_like(
        ctx,
        st,
        step,
        CopyConfig {
            keyword: "ADD",
            spec: &add.spec,
            from: None,
            parents: false,
            add: Some(AddConfig {
                checksum: add.checksum.clone(),
                keep_git_dir: add.keep_git_dir,
                unpack: add.unpack,
            }),
        },
    )
}
