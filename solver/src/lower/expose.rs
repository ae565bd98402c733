//! EXPOSE: ports (ranges expanded to single ports, `tcp` by default) into
//! the image config's `ExposedPorts`.

use kiln_parser::{ExposedPort, Step};

use crate::error::LowerError;

use super::gofmt::plain_list;
use super::state::{StageState, expand_error, invalid};

pub(crate) fn lower(st: &mut StageState, step: &Step, ports: &[String]) -> Result<(), LowerError> {
    let mut words = Vec::new();
    for p in ports {
        let e = st
            .scope
            .expand_words(p)
            .map_err(|e| expand_error(e, step.span))?;
        words.extend(e.value);
    }
    let mut specs = Vec::new();
    for w in &words {
        // `[ip:][hostport:]port[/proto]`: only the container port counts.
        let container = w.rsplit(':').next().unwrap_or(w);
        let port = ExposedPort::parse(container)
            .ok_or_else(|| invalid(format!("invalid containerPort: {container}"), step.span))?;
        for n in port.start..=port.end {
            specs.push(format!("{n}/{}", port.protocol.as_str()));
        }
    }
    st.image.update_config(|c| {
        let mut all = c.exposed_ports().clone().unwrap_or_default();
        for s in &specs {
            if !all.contains(s) {
                all.push(s.clone());
            }
        }
        all.sort();
        c.set_exposed_ports(Some(all));
    });
    st.history_empty(format!("EXPOSE {}", plain_list(&specs)));
    Ok(())
}
