//! A proxy server for shared objects, local and across machines.
//!
//! Not built yet: see the open issues.
