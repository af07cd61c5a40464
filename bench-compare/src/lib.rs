//! Empty: the benchmark lives in benches/codec.rs.
