//! Pool, AsyncResult and imap iterators.
//!
//! Not built yet: see the open issues.
