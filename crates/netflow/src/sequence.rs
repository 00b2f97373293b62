//! Sequence-number accounting per (exporter, domain) stream (stub; being written).
