//! End-to-end tests: real brokers on loopback, driven by raw protocol requests.

mod admin;
mod bad_input;
mod data;
mod versions;
