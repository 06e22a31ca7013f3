//! End-to-end tests: real brokers on loopback, driven by raw protocol requests.

#![allow(clippy::unwrap_used)] // tests

mod admin;
mod bad_input;
mod client_admin;
mod client_consumer;
mod client_producer;
mod data;
mod groups;
mod lifecycle;
mod listeners;
mod old_versions;
mod transactions;
mod validation;
mod versions;
