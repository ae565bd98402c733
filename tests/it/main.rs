//! kiln's black-box tests: one test binary, one module per topic. Every test
//! drives the real `kiln` binary against its own temporary root.

mod archive;
mod cli;
mod images;
mod store;
mod util;
