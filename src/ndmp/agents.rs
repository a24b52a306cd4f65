//! The MOVER and DATA agents of one session (placeholder until they are implemented).

use std::sync::{Arc, Mutex};

use super::conn::Conn;
use super::message::{Error, Request};
use super::services::Services;
use super::session::Next;
use super::tape::TapeDrive;

pub struct Agents {}

impl Agents {
    pub fn new(
        _services: Arc<Services>,
        _conn: Arc<Conn>,
        _tape: Arc<Mutex<Option<TapeDrive>>>,
    ) -> Self {
        Self {}
    }

    pub fn handle(&mut self, _request: Request) -> Next {
        Next::Reply(Error::NOT_SUPPORTED, Vec::new())
    }

    pub fn mover_busy(&self) -> bool {
        false
    }

    pub fn shutdown(&mut self) {}
}
