//! Helpers shared by the pool's integration tests.

#![allow(dead_code)] // each test file uses its own subset

use std::time::Duration;

/// The timeout of every blocking call in the tests.
pub const T: Duration = Duration::from_secs(30);
