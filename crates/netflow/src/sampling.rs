//! Sampling configuration learned from headers and options data (stub; being written).
