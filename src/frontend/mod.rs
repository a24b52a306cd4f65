//! Front ends: how CDBs reach xcopyd. One transport-independent [`dispatch::Dispatcher`]
//! answers every command; each transport (the iSCSI target here, TCMU later) only moves
//! PDUs or ring entries and calls it.

pub mod dispatch;
pub mod iscsi;
pub mod reservation;
pub mod tcmu;
#[cfg(any(test, feature = "testing"))]
pub mod testing;

pub use dispatch::Dispatcher;
