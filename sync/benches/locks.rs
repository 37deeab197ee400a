//! Lock benchmarks (placeholder until written).
fn main() {}
