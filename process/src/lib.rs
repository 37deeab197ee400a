//! Process with fork and spawn start methods.
//!
//! Not built yet: see the open issues.
