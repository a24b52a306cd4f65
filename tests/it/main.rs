//! The integration tests, in one binary (one link instead of one per file): each module
//! drives the library, the daemon or the CLI binaries from outside, as a user would.
//! Run one module: `cargo test --release --test it residue::`.

mod common;

mod admission;
mod backup;
mod compare_and_write;
mod copy;
mod copy_aborted;
mod copy_model;
mod daemon;
mod endpoints;
mod held_data;
mod hostile;
mod iscsi;
mod iscsi_window;
mod library;
mod limits;
mod manager;
mod ndmp;
mod objstore;
mod operations;
mod remote;
mod reservations;
mod residue;
mod segments;
mod signals;
mod tape;
