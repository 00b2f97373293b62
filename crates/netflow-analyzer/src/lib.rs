//! Analysis of stored flows (files written by `netflow collector` or the Python
//! original's collector). Work in progress: see issue 4.
