//! Session state machines.
