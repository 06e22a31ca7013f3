//! Strand client end-to-end tests (being written).
