//! Pipe/Connection, Queue, JoinableQueue, SimpleQueue, Listener/Client.
//!
//! Not built yet: see the open issues.
