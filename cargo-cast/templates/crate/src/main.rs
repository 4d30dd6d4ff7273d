//! Boots a microVM from the linked image and runs its entrypoint with these arguments.

cast_runner::casted_main!();
