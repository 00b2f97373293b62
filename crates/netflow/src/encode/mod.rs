//! Encoding export packets of every version (stub; being written).
