//! End-to-end attacks (issue 11), black-box over the built binary: see below.
