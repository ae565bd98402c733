//! kiln's black-box tests: one test binary, one module per topic. Every test
//! drives the real `kiln` binary against its own temporary root.

mod cli;
mod diff;
mod fault_proxy;
mod images;
mod login;
mod run;
mod run_lifecycle;
mod sandbox;
mod test_registry;
mod util;
