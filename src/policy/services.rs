//! Named services of policy rules: their protocols and default ports.
