//! Integration tests of cast-oci against a real registry (Debian's `docker-registry`,
//! run on 127.0.0.1 by each test) and against local sources built by the tests. Missing
//! tools make the tests fail with the package to install; nothing is skipped.

mod auth;
mod credential_helpers;
mod faults;
mod local_sources;
mod offline;
mod proxied;
mod pull;
mod support;
