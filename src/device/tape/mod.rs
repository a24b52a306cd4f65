//! An emulated SSC-3 tape drive over a SIMH .tap image.

pub mod image;

pub use image::{scan_bytes, Damage, LoadReport, Object};
