//! Benchmark baseline (work in progress, issue 5): receive UDP datagrams and discard them.
fn main() {}
