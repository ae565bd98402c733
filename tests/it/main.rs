//! kiln's black-box tests: one test binary, one module per topic. Every test
//! drives the real `kiln` binary against its own temporary root.

mod archive;
mod build;
mod build_add;
mod build_cache_remote;
mod build_check;
mod build_copy;
mod build_copy_cache;
mod build_copy_from_key;
mod build_copy_link;
mod build_copy_meta;
mod build_heredoc;
mod build_mounts;
mod build_semantics;
mod build_ssh;
mod cli;
mod diff;
mod fault_proxy;
mod file_server;
mod images;
mod inspect;
mod login;
mod parse;
mod prune;
mod registry;
mod run;
mod run_images;
mod run_lifecycle;
mod run_network;
mod sandbox;
mod store;
mod test_registry;
mod util;
mod volumes;
