//! The `linkkit` binary's library half: configuration, the command line, and the wiring that
//! runs one deployable (or all of them). It holds no business logic; the service crates do.

pub mod admin;
pub mod app;
pub mod cli;
pub mod client;
pub mod config;
pub mod operator;
pub mod receive;
pub mod shutdown;

pub use app::{run, Listeners, Service};
pub use config::Config;
